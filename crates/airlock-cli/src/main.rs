//! `airlock`: the airlock's command line. `main` only wires: parse, load the settings, run the
//! command, print what it produced, exit with a code that means something.

mod admin;
mod auth;
mod cli;
mod client;
mod commands;
mod config;
mod error;
mod output;
mod progress;
mod transfer;

use clap::Parser;
use cli::{Cli, Command, Direction};
use commands::{Outcome, Say};
use config::{Overrides, Settings};
use error::CliResult;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.global.json;
    let id_only = cli.global.id_only;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(outcome) => {
            if id_only {
                print_ids(&outcome);
            } else {
                print(&outcome, json);
            }
            match outcome {
                // A trail that does not verify is a finding, not a success.
                Outcome::Trail(t) if !t.verified => ExitCode::from(1),
                _ => ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"error": {"message": e.to_string(), "exitCode": format!("{:?}", e.exit_code()), "requestId": e.request_id()}})
                );
            } else if id_only && let Some(id) = e.request_id() {
                // The request exists: a script that captured nothing could not look at it.
                println!("{}", output::inert(id));
            }
            eprintln!("airlock: {}", output::inert(&e.to_string()));
            e.exit_code()
        }
    }
}

async fn run(cli: Cli) -> CliResult<Outcome> {
    let global = cli.global;
    let say = Say {
        quiet: global.quiet || global.json,
    };
    // `--id` keeps the step lines and progress (on stderr) for the person watching.
    let mut settings = Settings::load(Overrides {
        api: global.api,
        workspace: global.workspace,
        ca_cert: global.ca_cert,
        token: global.token,
    })?;
    match cli.command {
        Command::Login(args) => return commands::login(&mut settings, args, say).await,
        Command::Logout => return commands::logout(&settings),
        // Offline: no login, no airlock.
        Command::Verify(args) => return commands::verify(&args),
        _ => {}
    }
    let api = client::Api::new(settings)?;
    match cli.command {
        Command::Login(_) | Command::Logout => unreachable!("handled above"),
        Command::Export(args) => commands::send(&api, Direction::Export, args, say).await,
        Command::Import(args) => commands::send(&api, Direction::Import, args, say).await,
        Command::Create(args) => Ok(Outcome::Request(Box::new(
            commands::create(&api, args).await?,
        ))),
        Command::Upload(args) => commands::upload(&api, &args.id, &args.paths, say).await,
        Command::Submit(args) => {
            commands::submit(&api, &args.id, &args.context, &args.wait, say).await
        }
        Command::Comment(args) => commands::comment(&api, args).await,
        Command::Check(args) => commands::check(&api, &args.id).await,
        Command::Cancel(args) => commands::cancel(&api, &args.id).await,
        Command::Status(args) => commands::status(&api, args, say).await,
        Command::List(args) => commands::list(&api, args).await,
        Command::Download(args) => commands::download(&api, args, say).await,
        Command::Review(args) => commands::review(&api, args, say).await,
        Command::Justify(args) => commands::justify(&api, args).await,
        Command::Revoke(args) => commands::revoke(&api, args).await,
        Command::History(args) => commands::history(&api, &args.id).await,
        Command::Diff(args) => commands::diff(&api, &args.id).await,
        Command::Gates(args) => commands::gates(&api, &args.id).await,
        Command::Admin(command) => admin::run(&api, command).await,
        Command::Stats(args) => admin::stats(&api, args).await,
        Command::Record(args) => commands::record(&api, args).await,
        Command::Verify(_) => unreachable!("handled above"),
    }
}

/// `--id`: what a script captures.
fn print_ids(outcome: &Outcome) {
    match outcome {
        Outcome::Request(r) => println!("{}", output::inert(&r.airlock_request.id)),
        Outcome::List(l) => l
            .iter()
            .for_each(|r| println!("{}", output::inert(&r.airlock_request.id))),
        Outcome::Trail(t) => println!("{}", output::inert(&t.request_id)),
        Outcome::Message(_, v) => {
            if let Some(id) = v["requestId"].as_str() {
                println!("{}", output::inert(id));
            }
        }
    }
}

fn print(outcome: &Outcome, json: bool) {
    let text = match (outcome, json) {
        (Outcome::Request(r), true) => serde_json::to_string_pretty(r),
        (Outcome::List(l), true) => serde_json::to_string_pretty(l),
        (Outcome::Trail(t), true) => serde_json::to_string_pretty(t),
        (Outcome::Message(_, v), true) => serde_json::to_string_pretty(v),
        // What others wrote is shown inert on a terminal (JSON escapes it already).
        (Outcome::Request(r), false) => Ok(output::inert(&output::request(r))),
        (Outcome::List(l), false) => Ok(output::inert(&output::list(l))),
        (Outcome::Trail(t), false) => Ok(output::inert(&output::history(t))),
        (Outcome::Message(m, _), false) => Ok(format!("{}\n", output::inert(m))),
    }
    .expect("API documents serialise");
    print!("{}{}", text, if json { "\n" } else { "" });
}
