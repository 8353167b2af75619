<?php
// A worker that registers FUNCTION with a CAN_DO_TIMEOUT limit (libgearman's
// addFunction timeout, in seconds; 0 = none), takes SLEEP_MS per job and
// returns NAME. Between jobs it sleeps in PRE_SLEEP, as every libgearman
// worker does, until the server wakes it with NOOP.
// Usage: php timeout_worker.php HOST PORT FUNCTION TIMEOUT_S SLEEP_MS NAME
// Prints "READY" once registered, then "JOB <handle>" per job.
if ($argc < 7) { fwrite(STDERR, "usage: timeout_worker.php HOST PORT FUNCTION TIMEOUT_S SLEEP_MS NAME\n"); exit(2); }
[$_, $host, $port, $function, $timeout, $sleep_ms, $name] = $argv;

$worker = new GearmanWorker();
$worker->addServer($host, (int)$port);
$worker->addFunction($function, function (GearmanJob $job) use ($sleep_ms, $name) {
    echo "JOB ", $job->handle(), "\n";
    usleep((int)$sleep_ms * 1000);
    return $name;
}, null, (int)$timeout);
echo "READY\n";
while (true) {
    $worker->work();
    // A result sent after the server took the job back is refused with
    // JOB_NOT_FOUND; the worker carries on with the next job.
    if ($worker->returnCode() != GEARMAN_SUCCESS) {
        echo "WORK ", $worker->returnCode(), " ", $worker->error(), "\n";
    }
}
