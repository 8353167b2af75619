#!/usr/bin/perl
# Reads a background job's data, status and result with Gearman::Client's
# do_task on the server's function sprocket.result (the job's handle as the
# argument). Prints what arrived, one line each: "DATA x", "STATUS n/d",
# then "COMPLETE x" or "FAIL".
# Usage: perl result.pl HOST:PORT HANDLE
use strict;
use warnings;
use Gearman::Client;

my ($server, $handle) = @ARGV;
die "usage: result.pl HOST:PORT HANDLE\n" unless defined $handle;
$| = 1;
my $client = Gearman::Client->new(job_servers => [$server]);
my $r = $client->do_task('sprocket.result', $handle, {
    timeout   => 15,
    on_data   => sub { print "DATA ${ $_[0] }\n" },
    on_status => sub { print "STATUS $_[0]/$_[1]\n" },
});
print defined $r ? "COMPLETE $$r\n" : "FAIL\n";
