<?php
// A background worker in the manner of seed 004 ("Playing with Gearman"):
// it reports progress with sendStatus() and passes data with sendData() —
// which gearmand drops for a background job — and returns the reversed
// workload. It sleeps SLEEP_MS first, so a reader can attach while it runs.
// Usage: php records_worker.php HOST PORT FUNCTION SLEEP_MS
// Prints "READY" once registered, then "JOB <handle>" as each job starts
// and "SENT <handle>" once it has sent everything.
if ($argc < 5) { fwrite(STDERR, "usage: records_worker.php HOST PORT FUNCTION SLEEP_MS\n"); exit(2); }
[$_, $host, $port, $function, $sleep_ms] = $argv;

$worker = new GearmanWorker();
$worker->addServer($host, (int)$port);
$worker->addFunction($function, function (GearmanJob $job) use ($sleep_ms) {
    echo "JOB ", $job->handle(), "\n";
    usleep((int)$sleep_ms * 1000);
    $job->sendData("chunk one");
    $job->sendStatus(1, 2);
    $job->sendWarning("careful");
    $job->sendData("chunk two");
    $job->sendStatus(2, 2);
    echo "SENT ", $job->handle(), "\n";
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
