<?php
// Worker sendException -> client exception callback; and the fail path.
// Usage: php exception.php HOST PORT PREFIX
require __DIR__ . '/lib.php';
[$_, $host, $port, $prefix] = $argv;
$client = client_for($host, $port);
$exception = null;
$failed = false;
$completed = false;
$client->setExceptionCallback(function (GearmanTask $t) use (&$exception) { $exception = $t->data(); });
$client->setFailCallback(function (GearmanTask $t) use (&$failed) { $failed = true; });
$client->setCompleteCallback(function (GearmanTask $t) use (&$completed) { $completed = true; });
$client->addTask("{$prefix}_fail", "x1");
$client->runTasks();
check($exception === "boom: x1", "exception callback got the worker's exception data: " . var_export($exception, true));
check(!$completed, "complete callback not called for an exception");
echo "PASS\n";
