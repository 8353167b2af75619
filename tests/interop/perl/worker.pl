#!/usr/bin/perl
# Gearman::Worker (libgearman-client-perl) for the interop tests.
# Usage: perl worker.pl HOST:PORT PREFIX
# Registers PREFIX_rev (reverse, with status 1/2 and 2/2), PREFIX_upper,
# PREFIX_empty (returns '' : a false Perl value), PREFIX_zero (returns '0',
# also false) and PREFIX_die (dies, so the job fails).
use strict;
use warnings;
use Gearman::Worker;

my ($server, $prefix) = @ARGV;
die "usage: worker.pl HOST:PORT PREFIX\n" unless $prefix;
$| = 1;
my $worker = Gearman::Worker->new(job_servers => [$server]);
$worker->register_function("${prefix}_rev" => sub {
    my $job = shift;
    $job->set_status(1, 2);
    my $r = reverse $job->arg;
    $job->set_status(2, 2);
    return $r;
});
$worker->register_function("${prefix}_upper" => sub { return uc $_[0]->arg });
$worker->register_function("${prefix}_empty" => sub { return '' });
$worker->register_function("${prefix}_zero"  => sub { return '0' });
$worker->register_function("${prefix}_die"   => sub { die "worker died on purpose\n" });
$worker->register_function("${prefix}_slow"  => sub { select(undef, undef, undef, 0.3); return 'slow:' . $_[0]->arg });
print "READY\n";
$worker->work while 1;
