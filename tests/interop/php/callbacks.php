<?php
// Foreground task with status, data and complete callbacks (seed 004).
// Usage: php callbacks.php HOST PORT PREFIX
require __DIR__ . '/lib.php';
[$_, $host, $port, $prefix] = $argv;
$client = client_for($host, $port);
$statuses = [];
$data = [];
$done = null;
$created = null;
$client->setCreatedCallback(function (GearmanTask $t) use (&$created) { $created = $t->jobHandle(); });
$client->setStatusCallback(function (GearmanTask $t) use (&$statuses) {
    $statuses[] = $t->taskNumerator() . "/" . $t->taskDenominator();
});
$client->setDataCallback(function (GearmanTask $t) use (&$data) { $data[] = $t->data(); });
$client->setCompleteCallback(function (GearmanTask $t) use (&$done) { $done = $t->data(); });
$client->addTask("{$prefix}_reverse", "Rasmus");
$ok = $client->runTasks();
check($ok, "runTasks returned true (" . $client->error() . ")");
check(is_string($created) && $created !== '', "created callback saw a job handle ($created)");
$want = [];
for ($i = 1; $i <= 10; $i++) { $want[] = "$i/10"; }
check($statuses === $want, "status callbacks 1/10..10/10: " . implode(",", $statuses));
$wantData = [];
for ($i = 1; $i <= 10; $i++) { $wantData[] = "step $i"; }
check($data === $wantData, "data callbacks step 1..step 10: " . implode(",", $data));
check($done === "sumsaR", "complete callback got the reversed string: " . var_export($done, true));
// doNormal, the blocking form.
$r = $client->doNormal("{$prefix}_reverse", "ABC123");
// libgearman's doNormal returns the WORK_DATA chunks followed by the result.
check($client->returnCode() == GEARMAN_SUCCESS && str_ends_with($r, "321CBA"), "doNormal returns ...321CBA: " . var_export($r, true));
echo "PASS\n";
