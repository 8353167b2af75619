<?php
// Reverse worker of seed 004 ("Playing with Gearman"), made fast for tests.
// Usage: php worker.php HOST PORT PREFIX [STEP_MS [STATUS_FN]]
// Registers:
//   PREFIX_reverse : 10 x (status i/10, data "step i", sleep STEP_MS), returns strrev(workload)
//   STATUS_FN      : (default PREFIX_status; the seed calls it `reverse`)
//                    10 x (status i/10, sleep STEP_MS), returns strrev(workload)
//   PREFIX_fail    : sends an exception "boom: <workload>" and fails the job
// Prints "READY" once registered, then "JOB <handle>" per job.
if ($argc < 4) { fwrite(STDERR, "usage: worker.php HOST PORT PREFIX [STEP_MS [STATUS_FN]]\n"); exit(2); }
[$_, $host, $port, $prefix] = $argv;
$step_us = (int)($argv[4] ?? 20) * 1000;
$status_fn = $argv[5] ?? "{$prefix}_status";

$worker = new GearmanWorker();
$worker->addServer($host, (int)$port);
$worker->addFunction("{$prefix}_reverse", function (GearmanJob $job) use ($step_us) {
    echo "JOB ", $job->handle(), "\n";
    $workload = $job->workload();
    for ($i = 1; $i <= 10; $i++) {
        $job->sendStatus($i, 10);
        $job->sendData("step $i");
        usleep($step_us);
    }
    return strrev($workload);
});
// The seed's original worker: progress only, no data packets.
$worker->addFunction($status_fn, function (GearmanJob $job) use ($step_us) {
    echo "JOB ", $job->handle(), "\n";
    for ($i = 1; $i <= 10; $i++) {
        $job->sendStatus($i, 10);
        usleep($step_us);
    }
    return strrev($job->workload());
});
$worker->addFunction("{$prefix}_fail", function (GearmanJob $job) {
    echo "JOB ", $job->handle(), "\n";
    $job->sendException("boom: " . $job->workload());
    return GEARMAN_WORK_EXCEPTION;
});
echo "READY\n";
while (true) {
    $worker->work();
    if ($worker->returnCode() != GEARMAN_SUCCESS) {
        fwrite(STDERR, "worker error: " . $worker->error() . "\n");
        exit(1);
    }
}
