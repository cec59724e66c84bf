//! The client commands: each talks to the running daemon, or (for bans)
//! works on the pinned maps directly when no daemon runs.

use std::process::ExitCode;

use anyhow::{Context as _, bail};

use crate::{
    bans::expiry_after,
    cli::{BanArgs, CheckArgs, ClientArgs, DetachArgs, StatusArgs, UnbanArgs},
    control::{
        Request, Response,
        client::{ClientError, request},
    },
    daemon::engine::ban_entries,
    dataplane::{
        Maps,
        attach::detach_all,
        bans::{read_bans, write_bans},
    },
};

fn ask(client: &ClientArgs, req: &Request) -> Result<Response, ClientError> {
    request(&client.run_dir, req)
}

fn ok(response: Response) -> anyhow::Result<ExitCode> {
    match response {
        Response::Ok { message } => {
            println!("{message}");
            Ok(ExitCode::SUCCESS)
        }
        Response::Error { message } => bail!("{message}"),
        other => bail!("unexpected answer from the daemon: {other:?}"),
    }
}

/// `dockfw ban`.
pub fn ban(args: &BanArgs) -> anyhow::Result<ExitCode> {
    let seconds = args.duration.map(|duration| duration.as_secs().max(1));
    match ask(
        &args.client,
        &Request::Ban {
            cidr: args.cidr,
            seconds,
        },
    ) {
        Ok(response) => ok(response),
        Err(ClientError::NotRunning(_)) => {
            let mut maps = open_pins(&args.client)?;
            let _lock = lock_pins(&args.client)?;
            let old = read_bans(&maps)?;
            let mut new = old.clone();
            new.insert(args.cidr, expiry_after(args.duration));
            write_bans(&mut maps, &old, &new)?;
            println!(
                "banned {} (no daemon running: written to the pinned maps)",
                args.cidr.trunc()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => Err(error.into()),
    }
}

/// `dockfw unban`.
pub fn unban(args: &UnbanArgs) -> anyhow::Result<ExitCode> {
    match ask(&args.client, &Request::Unban { cidr: args.cidr }) {
        Ok(response) => ok(response),
        Err(ClientError::NotRunning(_)) => {
            let mut maps = open_pins(&args.client)?;
            let _lock = lock_pins(&args.client)?;
            let old = read_bans(&maps)?;
            let mut new = old.clone();
            if !new.remove(&args.cidr) {
                bail!("{} is not banned (see `dockfw bans`)", args.cidr);
            }
            write_bans(&mut maps, &old, &new)?;
            println!(
                "unbanned {} (no daemon running: written to the pinned maps)",
                args.cidr.trunc()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => Err(error.into()),
    }
}

/// `dockfw bans`.
pub fn bans(args: &ClientArgs) -> anyhow::Result<ExitCode> {
    let entries = match ask(args, &Request::Bans) {
        Ok(Response::Bans { bans }) => bans,
        Ok(Response::Error { message }) => bail!("{message}"),
        Ok(other) => bail!("unexpected answer from the daemon: {other:?}"),
        Err(ClientError::NotRunning(_)) => ban_entries(&read_bans(&open_pins(args)?)?),
        Err(error) => return Err(error.into()),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
    } else if entries.is_empty() {
        println!("no bans");
    } else {
        for entry in entries {
            match entry.remaining_seconds {
                None => println!("{}\tpermanent", entry.cidr),
                Some(seconds) => println!(
                    "{}\texpires in {}",
                    entry.cidr,
                    humantime::format_duration(std::time::Duration::from_secs(seconds))
                ),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The pinned maps' writer lock, for an update without a daemon.
fn lock_pins(args: &ClientArgs) -> anyhow::Result<crate::dataplane::pins::WriterLock> {
    crate::dataplane::pins::lock_writer(&args.pin_dir, crate::dataplane::pins::WRITER_WAIT)
        .with_context(|| {
            format!(
                "no daemon answers, and the maps pinned under {} are not free to write (a \
                 daemon starting, or another `dockfw ban`?); try again",
                args.pin_dir.display()
            )
        })
}

fn open_pins(args: &ClientArgs) -> anyhow::Result<Maps> {
    Maps::from_pins(&args.pin_dir).with_context(|| {
        format!(
            "no daemon is running and there are no pinned maps under {}; start `dockfw run`",
            args.pin_dir.display()
        )
    })
}

/// `dockfw status`.
pub fn status(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    match ask(&args.client, &Request::Status)? {
        Response::Status { status } => {
            if args.client.json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", status.render());
            }
            Ok(ExitCode::SUCCESS)
        }
        Response::Error { message } => bail!("{message}"),
        other => bail!("unexpected answer from the daemon: {other:?}"),
    }
}

/// `dockfw check`.
pub fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    match crate::policy::parse_policy_file(&args.policy) {
        Ok(policy) => {
            print!("{}", crate::policy::check_summary(&policy));
            println!("{}: OK", args.policy.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("{error}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `dockfw detach`.
pub fn detach(args: &DetachArgs) -> anyhow::Result<ExitCode> {
    let removed = detach_all(&args.pin_dir)?;
    if removed.is_empty() {
        println!("nothing pinned under {}", args.pin_dir.display());
    } else {
        for item in removed {
            println!("removed {item}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
