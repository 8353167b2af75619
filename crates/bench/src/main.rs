//! `sprocket-bench`: the same load generator as `sprocket bench`, as a
//! standalone binary.

use clap::Parser;
use sprocket_bench::BenchArgs;

/// Gearman load generator: submit-bg, drain, roundtrip, mixed, idle.
#[derive(Parser)]
#[command(name = "sprocket-bench", version)]
struct Cli {
    #[command(flatten)]
    args: BenchArgs,
}

fn main() -> anyhow::Result<()> {
    sprocket_bench::run_blocking(Cli::parse().args)
}
