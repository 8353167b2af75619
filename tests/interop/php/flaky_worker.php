<?php
// A worker that fails: for each job, its first FAILS calls fail (MODE
// "fail": WORK_FAIL; "exception": WORK_EXCEPTION with the text
// "broken: <workload>"), later calls return the workload reversed. When
// FIXED_FILE is given and exists, every call succeeds (an operator "fixed
// the worker"). Between jobs libgearman sleeps with PRE_SLEEP, so a retry
// reaches it only if the server wakes it.
// Usage: php flaky_worker.php HOST PORT FUNCTION FAILS MODE [FIXED_FILE]
// Prints "READY" once registered, then "CALL <handle> <n> <unix ms>" per call.
if ($argc < 6) { fwrite(STDERR, "usage: flaky_worker.php HOST PORT FUNCTION FAILS MODE [FIXED_FILE]\n"); exit(2); }
$host = $argv[1]; $port = (int)$argv[2]; $function = $argv[3];
$fails = (int)$argv[4]; $mode = $argv[5]; $fixed = $argc > 6 ? $argv[6] : null;

$calls = [];
$worker = new GearmanWorker();
$worker->addServer($host, $port);
$worker->addFunction($function, function (GearmanJob $job) use (&$calls, $fails, $mode, $fixed) {
    $handle = $job->handle();
    $calls[$handle] = ($calls[$handle] ?? 0) + 1;
    $n = $calls[$handle];
    echo "CALL $handle $n ", (int)(microtime(true) * 1000), "\n";
    $repaired = $fixed !== null && file_exists($fixed);
    if ($n <= $fails && !$repaired) {
        if ($mode === 'exception') {
            $job->sendException("broken: " . $job->workload());
            return GEARMAN_WORK_EXCEPTION;
        }
        $job->sendFail();
        return GEARMAN_WORK_FAIL;
    }
    return strrev($job->workload());
});
echo "READY\n";
while (true) {
    $worker->work();
    if ($worker->returnCode() != GEARMAN_SUCCESS) {
        fwrite(STDERR, "worker error: " . $worker->error() . "\n");
        exit(1);
    }
}
