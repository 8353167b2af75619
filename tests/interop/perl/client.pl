#!/usr/bin/perl
# Gearman::Client scenarios. Usage: perl client.pl HOST:PORT PREFIX SCENARIO...
# Scenarios: do_task, background, taskset, fail, false_values
# Prints "ok - ..." per check and "PASS" at the end; exits 1 on the first failure.
use strict;
use warnings;
use Gearman::Client;
use Time::HiRes qw(time sleep);

my ($server, $prefix, @scenarios) = @ARGV;
die "usage: client.pl HOST:PORT PREFIX SCENARIO...\n" unless @scenarios;
$| = 1;
my $client = Gearman::Client->new(job_servers => [$server]);

sub check {
    my ($cond, $what) = @_;
    if (!$cond) { print STDERR "FAIL: $what\n"; exit 1; }
    print "ok - $what\n";
}

my %scenario = (
    do_task => sub {
        my $r = $client->do_task("${prefix}_rev", "Hello Perl", { timeout => 10 });
        check(ref $r && $$r eq "lreP olleH", "do_task returns the reversed string: " . (ref $r ? $$r : 'undef'));
        my @status;
        $r = $client->do_task("${prefix}_rev", "abc", {
            timeout => 10,
            on_status => sub { push @status, "$_[0]/$_[1]" },
        });
        check(ref $r && $$r eq "cba", "do_task with on_status returns cba");
        check("@status" eq "1/2 2/2", "on_status saw 1/2 2/2: @status");
    },
    background => sub {
        my $handle = $client->dispatch_background("${prefix}_slow", "bg1");
        check(defined $handle && length $handle, "dispatch_background returns a handle: " . ($handle // 'undef'));
        my $st = $client->get_status($handle);
        check($st && $st->known, "get_status: the background job is known");
        my $deadline = time + 10;
        my $gone = 0;
        while (time < $deadline) {
            $st = $client->get_status($handle);
            if ($st && !$st->known) { $gone = 1; last; }
            sleep 0.02;
        }
        check($gone, "get_status: the background job is unknown once done");
    },
    taskset => sub {
        my $ts = $client->new_task_set;
        my %got;
        for my $word (qw(alpha beta gamma delta)) {
            $ts->add_task("${prefix}_upper", $word, {
                on_complete => sub { $got{$word} = ${ $_[0] } },
                on_fail => sub { $got{$word} = 'FAILED' },
            });
        }
        $ts->wait(timeout => 10);
        check(join(',', map { $got{$_} // 'none' } qw(alpha beta gamma delta)) eq 'ALPHA,BETA,GAMMA,DELTA',
              "task set of 4 completed: " . join(',', map { $got{$_} // 'none' } qw(alpha beta gamma delta)));
    },
    fail => sub {
        my $failed = 0;
        my $r = $client->do_task("${prefix}_die", "x", { timeout => 10, on_fail => sub { $failed = 1 } });
        check(!defined $r, "do_task of a dying worker returns undef");
        check($failed, "on_fail called");
    },
    # Perl workers send WORK_COMPLETE without the NUL separator for a false
    # result; Sprocket accepts it as an empty result (gearmand drops the worker).
    false_values => sub {
        my $r = $client->do_task("${prefix}_empty", "x", { timeout => 5 });
        check(ref $r && $$r eq '', "a worker returning '' completes with an empty result");
        $r = $client->do_task("${prefix}_zero", "x", { timeout => 5 });
        check(ref $r && $$r eq '', "a worker returning '0' completes (its result arrives empty)");
        $r = $client->do_task("${prefix}_rev", "after", { timeout => 5 });
        check(ref $r && $$r eq 'retfa', "the worker is still served afterwards");
    },
);

for my $s (@scenarios) {
    my $code = $scenario{$s} or die "unknown scenario $s\n";
    $code->();
}
print "PASS\n";
