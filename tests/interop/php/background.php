<?php
// Background task, then jobStatus while it runs (seed 004).
// Usage: php background.php HOST PORT PREFIX
require __DIR__ . '/lib.php';
[$_, $host, $port, $prefix] = $argv;
$client = client_for($host, $port);
$handle = null;
$client->setCreatedCallback(function (GearmanTask $t) use (&$handle) { $handle = $t->jobHandle(); });
$client->addTaskBackground("{$prefix}_reverse", "ABC123");
check($client->runTasks(), "runTasks for a background task returns at once");
check(is_string($handle) && $handle !== '', "background job handle: $handle");

// Poll until the worker has reported some progress.
$seenRunning = false;
$deadline = microtime(true) + 10;
while (microtime(true) < $deadline) {
    [$known, $running, $num, $den] = $client->jobStatus($handle);
    if ($known && $running && $num > 0) {
        check($den == 10 && $num >= 1 && $num <= 10, "jobStatus while running: known=1 running=1 $num/$den");
        $seenRunning = true;
        break;
    }
    usleep(5000);
}
check($seenRunning, "jobStatus reported the job running with progress");
// Then until it is gone.
$gone = false;
$deadline = microtime(true) + 10;
while (microtime(true) < $deadline) {
    $st = $client->jobStatus($handle);
    if (!$st[0]) { $gone = true; break; }
    usleep(10000);
}
check($gone, "jobStatus says unknown once the job finished");
check($client->jobStatus("H:nosuchhost:999999") === [false, false, 0, 0], "jobStatus of an unknown handle is all zero");

// doBackground, the blocking form, and addTaskStatus.
$h2 = $client->doBackground("{$prefix}_reverse", "DEF456");
check($client->returnCode() == GEARMAN_SUCCESS && $h2 !== '', "doBackground returns a handle: $h2");
// php-gearman frees tasks after runTasks(), so read the status in its callback.
$statusSeen = null;
$client->setStatusCallback(function (GearmanTask $t) use (&$statusSeen) {
    $statusSeen = [$t->isKnown(), $t->taskDenominator()];
});
$client->addTaskStatus($h2);
check($client->runTasks(), "runTasks with a status task");
check(is_array($statusSeen) && $statusSeen[0], "addTaskStatus: the background job is known: " . var_export($statusSeen, true));
echo "PASS\n";
