<?php
// Two foreground tasks with runTasks: with two workers they run in parallel.
// Usage: php parallel.php HOST PORT PREFIX  -> prints "SINGLE <secs>" and "PAIR <secs>"
require __DIR__ . '/lib.php';
[$_, $host, $port, $prefix] = $argv;
$client = client_for($host, $port);
$results = [];
$client->setCompleteCallback(function (GearmanTask $t) use (&$results) { $results[] = $t->data(); });

$t0 = microtime(true);
$client->addTask("{$prefix}_reverse", "single");
check($client->runTasks(), "runTasks single");
$single = microtime(true) - $t0;

$results = [];
$t0 = microtime(true);
$client->addTask("{$prefix}_reverse", "ABC123");
$client->addTask("{$prefix}_reverse", "DEF456");
check($client->runTasks(), "runTasks pair");
$pair = microtime(true) - $t0;
sort($results);
check($results === ["321CBA", "654FED"], "both results: " . implode(",", $results));
printf("SINGLE %.3f\nPAIR %.3f\n", $single, $pair);
check($pair < 1.6 * $single, sprintf("two tasks on two workers take ~1x (%.3fs) not ~2x the single task (%.3fs)", $pair, $single));
echo "PASS\n";
