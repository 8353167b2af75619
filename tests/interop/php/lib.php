<?php
// Small assertion helpers shared by the PHP client scenarios.
function check($cond, string $what): void {
    if (!$cond) {
        fwrite(STDERR, "FAIL: $what\n");
        exit(1);
    }
    echo "ok - $what\n";
}
function client_for(string $host, string $port): GearmanClient {
    $client = new GearmanClient();
    $client->addServer($host, (int)$port);
    $client->setTimeout(15000);
    return $client;
}
