//! `bench-chart`: reads the JSON lines written by bench/compare.sh, prints
//! Markdown tables of medians and Sprocket/gearmand ratios, and draws the
//! throughput-against-connections PNG.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use sprocket_bench::summary::Results;

/// Summarise bench/compare.sh results: Markdown tables and a PNG chart.
#[derive(Parser)]
#[command(name = "bench-chart", version)]
struct Cli {
    /// results.jsonl written by bench/compare.sh.
    results: PathBuf,
    /// Write the chart here (PNG).
    #[arg(long)]
    png: Option<PathBuf>,
    /// Also write the Markdown tables to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Chart title.
    #[arg(long, default_value = "Sprocket vs gearmand 1.1.20, in-memory queue")]
    title: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let input = std::fs::read_to_string(&cli.results).with_context(|| format!("reading {}", cli.results.display()))?;
    let results = Results::parse(&input)?;
    let md = results.markdown();
    print!("{md}");
    if let Some(p) = &cli.markdown {
        std::fs::write(p, &md).with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &cli.png {
        let series = results.chart_series();
        if series.is_empty() {
            // e.g. `compare.sh --skip memory`: tables only, no chart.
            eprintln!("no in-memory connection-sweep rows in the results; no chart drawn");
        } else {
            sprocket_bench::chart::draw(p, &cli.title, &series)?;
            eprintln!("chart written to {}", p.display());
        }
    }
    Ok(())
}
