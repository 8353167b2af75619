<?php
// Seed 004's background submit: addTaskBackground() and runTasks(), which
// returns at once. Prints "HANDLE <handle>" for a later process to use.
// Usage: php records_submit.php HOST PORT FUNCTION WORKLOAD
if ($argc < 5) { fwrite(STDERR, "usage: records_submit.php HOST PORT FUNCTION WORKLOAD\n"); exit(2); }
[$_, $host, $port, $function, $workload] = $argv;
$client = new GearmanClient();
$client->addServer($host, (int)$port);
$client->setTimeout(15000);
$handle = null;
$client->setCreatedCallback(function (GearmanTask $t) use (&$handle) { $handle = $t->jobHandle(); });
$client->addTaskBackground($function, $workload);
if (!$client->runTasks() || !is_string($handle) || $handle === '') {
    fwrite(STDERR, "background submit failed: " . $client->error() . "\n");
    exit(1);
}
echo "HANDLE $handle\n";
