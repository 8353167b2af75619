<?php
// Submits one foreground job and reports how it ended: "RESULT <data>" for
// a completed job, "FAIL" for GEARMAN_WORK_FAIL, "OTHER <code> <error>".
// Usage: php timeout_client.php HOST PORT FUNCTION
require __DIR__ . '/lib.php';
[$_, $host, $port, $function] = $argv;
$client = client_for($host, $port);
$result = $client->doNormal($function, "payload");
$code = $client->returnCode();
if ($code == GEARMAN_SUCCESS) {
    echo "RESULT $result\n";
} elseif ($code == GEARMAN_WORK_FAIL) {
    echo "FAIL\n";
} else {
    echo "OTHER $code ", $client->error(), "\n";
}
