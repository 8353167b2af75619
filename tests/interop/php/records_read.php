<?php
// Reads a background job's data, status and result in a process of its own,
// with nothing but php-gearman's callbacks: a foreground task of the
// server's function sprocket.result with the job's handle as workload.
// Prints one line per callback in the order they came, then "DONE" (or
// "ERROR <text>" when runTasks() failed).
// Usage: php records_read.php HOST PORT HANDLE
if ($argc < 4) { fwrite(STDERR, "usage: records_read.php HOST PORT HANDLE\n"); exit(2); }
[$_, $host, $port, $handle] = $argv;
$client = new GearmanClient();
$client->addServer($host, (int)$port);
$client->setTimeout(15000);
$client->setCreatedCallback(function (GearmanTask $t) { echo "CREATED ", $t->jobHandle(), "\n"; });
$client->setDataCallback(function (GearmanTask $t) { echo "DATA ", $t->data(), "\n"; });
$client->setWarningCallback(function (GearmanTask $t) { echo "WARNING ", $t->data(), "\n"; });
$client->setStatusCallback(function (GearmanTask $t) {
    echo "STATUS ", $t->taskNumerator(), "/", $t->taskDenominator(), "\n";
});
$client->setCompleteCallback(function (GearmanTask $t) { echo "COMPLETE ", $t->data(), "\n"; });
$client->setFailCallback(function (GearmanTask $t) { echo "FAIL\n"; });
$client->addTask('sprocket.result', $handle);
if ($client->runTasks()) {
    echo "DONE\n";
} else {
    echo "ERROR ", $client->error(), "\n";
}
