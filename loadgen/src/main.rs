//! `loadgen`: runs one scenario and prints its report (exit 1 when a correctness check failed,
//! 2 when the run could not start), or compares saved reports.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use loadgen::cli::{Cli, Command, TargetArgs};
use loadgen::report::Report;
use loadgen::scenarios::idle::shard::{self, Share};
use loadgen::scenarios::{idle, pairing, relay, session, Context};
use loadgen::{compare, limits};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let file_limit = limits::raise_file_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("loadgen: cannot start the runtime: {err}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(run(cli.command, file_limit))
}

async fn run(command: Command, file_limit: u64) -> ExitCode {
    let (ctx, json) = match &command {
        Command::Compare(args) => return compare_reports(&args.reports, args.markdown, args.json),
        Command::Pairing(a) => (context(&a.target, file_limit).await, a.target.json),
        Command::Relay(a) => (context(&a.target, file_limit).await, a.target.json),
        Command::Idle(a) => (context(&a.target, file_limit).await, a.target.json),
        Command::Session(a) => (context(&a.target, file_limit).await, a.target.json),
    };
    let Some(ctx) = ctx else { return ExitCode::from(2) };
    let report = match &command {
        Command::Pairing(args) => pairing::run(&ctx, args).await,
        Command::Relay(args) => relay::run(&ctx, args).await,
        Command::Idle(args) => match &args.shard {
            Some(text) => {
                let Ok(share) = Share::parse(text).inspect_err(|err| eprintln!("loadgen: --shard {text}: {err}"))
                else {
                    return ExitCode::from(2);
                };
                shard::run(&ctx, share, args.clients & !1, args.in_flight, Duration::from_secs(args.hold)).await;
                return ExitCode::SUCCESS;
            }
            None => idle::run(&ctx, args).await,
        },
        Command::Session(args) => session::run(&ctx, args).await,
        Command::Compare(_) => return ExitCode::SUCCESS,
    };
    print(&report, json)
}

async fn context(args: &TargetArgs, file_limit: u64) -> Option<Context> {
    Context::new(args, file_limit).await.inspect_err(|err| eprintln!("loadgen: {err}")).ok()
}

fn print(report: &Report, json: bool) -> ExitCode {
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn compare_reports(paths: &[std::path::PathBuf], markdown: bool, json: bool) -> ExitCode {
    let reports = match compare::load(paths) {
        Ok(reports) => reports,
        Err(err) => {
            eprintln!("loadgen: {err}");
            return ExitCode::from(2);
        }
    };
    let rows = compare::rows(&reports);
    if json {
        println!("{}", serde_json::to_string_pretty(&rows).unwrap_or_default());
    } else {
        print!("{}", compare::render(&rows, markdown));
        for failure in compare::failures(&reports) {
            println!("checks failed: {failure}");
        }
    }
    ExitCode::SUCCESS
}
