//! `dockfw-demo`, run by `cargo xtask demo`: a newcomer's first five
//! minutes. In namespaces it creates (and removes afterwards, also on
//! Ctrl-C) it starts a real dockerd with a published HTTP container, a
//! legitimate client and an attacker flooding the published port; first
//! the operator's usual DOCKER-USER rule drops the attack, then dockfw
//! enforces the same rule in XDP. It shows, live, the client's served
//! requests, the attack offered and dropped and the host CPU spent, and
//! ends with a summary of the two.
//!
//! - [`options`]: the knobs; [`prereq`]: everything checked before
//!   anything is created; [`signals`]: Ctrl-C as a flag;
//! - [`state`]: what a run created, for the guards and `--teardown`
//!   ([`teardown`]);
//! - [`topology`]: namespaces, the link, dockerd and the container;
//!   [`receiver`]: the host's receiving CPU, measured;
//! - [`docker_user`]: the rule; [`enforcer`]: dockfw mirroring it;
//! - [`attack`], [`legit`]: the traffic; [`phase`]: one measured phase;
//!   [`screen`], [`summary`], [`units`]: what is shown.

mod attack;
mod docker_user;
mod enforcer;
mod legit;
mod options;
mod phase;
mod prereq;
mod receiver;
mod screen;
mod signals;
mod state;
mod summary;
mod teardown;
mod topology;
mod units;

use std::process::ExitCode;

use options::{Mode, Options};
use phase::{Enforcement, Phase};
use screen::Screen;
use state::StateDir;
use topology::{
    ATTACK_FIXED, ATTACK_NET, CLIENT_ADDR, HOST_ADDR, Topology, WEB_CONTAINER, WEB_PORT,
};

/// Exit status when a prerequisite is missing (nothing was created).
const EXIT_PREREQUISITE: u8 = 3;
/// Exit status after an interruption (everything was removed).
const EXIT_INTERRUPTED: u8 = 130;

/// Runs the demo with `args` (without the program name).
pub fn main(args: &[String]) -> ExitCode {
    let options = match options::parse(args) {
        Ok(Mode::Help) => {
            println!("{}", options::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(Mode::Teardown) => return teardown(),
        Ok(Mode::Run(options)) => options,
        Err(error) => {
            eprintln!("dockfw-demo: {error}\n\n{}", options::USAGE);
            return ExitCode::from(2);
        }
    };
    // Checked before anything exists (a Ctrl-C meanwhile just ends it).
    let missing = prereq::missing();
    if !missing.is_empty() {
        eprintln!("dockfw-demo: cannot run; nothing was created. Missing:");
        for item in &missing {
            eprintln!("  - {item}");
        }
        if !prereq::only_root(&missing) {
            eprintln!("{}", prereq::INSTALL_HINT);
        }
        return ExitCode::from(EXIT_PREREQUISITE);
    }
    if let Err(error) = signals::install() {
        eprintln!("dockfw-demo: {error}");
        return ExitCode::FAILURE;
    }
    // A failed setup step of the shared test helpers panics naming the
    // step; say it in one line, and let the unwinding guards clean up.
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("a step failed");
        eprintln!("dockfw-demo: {message}");
    }));
    let mut screen = Screen::new();
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&options, &mut screen)));
    match outcome {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(_)) if signals::interrupted() => {
            eprintln!("dockfw-demo: interrupted; everything it created was removed");
            ExitCode::from(EXIT_INTERRUPTED)
        }
        Ok(Err(error)) => {
            eprintln!("dockfw-demo: {error}");
            eprintln!("dockfw-demo: everything it created was removed");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("dockfw-demo: everything it created was removed");
            ExitCode::FAILURE
        }
    }
}

fn teardown() -> ExitCode {
    match teardown::run() {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("dockfw-demo: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Both phases. The guards drop in reverse order of creation: dockfw,
/// then the topology (containers, dockerd, link, namespaces), then the
/// state directory.
fn run(options: &Options, screen: &mut Screen) -> Result<(), String> {
    intro(options, screen);
    let mut state = StateDir::create()?;
    screen.line("Setting up:");
    let topology = Topology::build(&mut state, options.rate, &mut |step| screen.step(step))?;
    screen.step("adding the DOCKER-USER rule");
    docker_user::install(&topology.host)?;
    let napi = receiver::pin_napi_thread(&topology.host_dev)?;
    signals::check()?;

    screen.phase_start(1, Enforcement::DockerUser);
    let netfilter = Phase {
        topology: &topology,
        enforcer: None,
        napi,
        rate: options.rate,
        legit_rate: options.legit_rate,
        duration: options.duration,
    }
    .run(screen)?;
    signals::check()?;

    screen.line("");
    screen.step("starting dockfw run --mirror-docker-user, native XDP");
    let mut enforcer = enforcer::Enforcer::start(&mut state, &topology)?;
    enforcer.wait_ready()?;
    // veth re-creates its NAPI instance when an XDP program attaches.
    let napi = receiver::pin_napi_thread(&topology.host_dev)?;
    screen.phase_start(2, Enforcement::Dockfw);
    let xdp = Phase {
        topology: &topology,
        enforcer: Some(&enforcer),
        napi,
        rate: options.rate,
        legit_rate: options.legit_rate,
        duration: options.duration,
    }
    .run(screen)?;
    screen.summary(
        options.duration,
        options.rate,
        options.legit_rate,
        &[netfilter, xdp],
    );

    if options.keep {
        keep_up(screen, &state, &topology, &enforcer);
        enforcer.keep = true;
        state.keep = true;
        // Leaves the namespaces, the link, dockerd and its container up;
        // `--teardown` removes them from what the state file records.
        std::mem::forget(topology);
    } else {
        screen.line("");
        screen.step("removing everything the demo created");
    }
    Ok(())
}

fn intro(options: &Options, screen: &mut Screen) {
    let heading = screen.bold("dockfw demo: a SYN flood against a Docker published port");
    screen.line(&heading);
    screen.line("");
    for line in intro_lines(options) {
        screen.line(&line);
    }
    screen.line("");
    let left = teardown::left_over();
    if !left.is_empty() {
        let pids: Vec<String> = left.iter().map(u32::to_string).collect();
        screen.line(&format!(
            "Note: earlier demo runs are still up ({}); `--teardown` removes them.",
            pids.join(", ")
        ));
        screen.line("");
    }
}

/// The scenario, as the intro shows it.
fn intro_lines(options: &Options) -> Vec<String> {
    let seconds = options.duration.as_secs();
    vec![
        format!(
            "  host      dockerd, container \"{WEB_CONTAINER}\" (httpd) published on {HOST_ADDR}:{WEB_PORT}"
        ),
        format!(
            "  client    {CLIENT_ADDR}: {} requests/s, an answer later than {} s is lost",
            options.legit_rate,
            legit::TIMEOUT.as_secs()
        ),
        format!(
            "  attacker  {} SYN/s to port {WEB_PORT}, switching every second between",
            units::pps(options.rate as f64)
        ),
        format!("            one source ({ATTACK_FIXED}) and sources spoofed across {ATTACK_NET}"),
        "  policy    drop the attacker's network, as operators do it today:".into(),
        format!("            {}", docker_user::SHOWN[0]),
        format!("              {}", docker_user::SHOWN[1]),
        "  measured  the host's receive work (its interface's NAPI thread, alone on".into(),
        format!(
            "            CPU {}), and what the client and the attacker got through",
            receiver::host_cpu()
        ),
        format!(
            "  phases    {seconds} s with the rule alone, then {seconds} s with dockfw enforcing it"
        ),
    ]
}

/// Prints how to look at what `--keep` left up, and how to remove it.
fn keep_up(
    screen: &mut Screen,
    state: &StateDir,
    topology: &Topology,
    enforcer: &enforcer::Enforcer,
) {
    let dockfw = enforcer::dockfw_command(state.dir());
    let run_dir = &enforcer.run_dir;
    let demo = std::env::current_exe()
        .map(|path| path.display().to_string())
        .unwrap_or_else(|_| "dockfw-demo".into());
    let host = topology.host.path();
    let wan = topology.wan.path();
    let lines = [
        String::new(),
        screen.bold("Still up (--keep): dockerd, the container, and dockfw enforcing the rule."),
        "The flood has stopped. As root:".into(),
        String::new(),
        "  watch dockfw live:".into(),
        format!(
            "    {} top --run-dir {}",
            dockfw.display(),
            run_dir.display()
        ),
        "  its status, rules and counters:".into(),
        format!(
            "    {} status --run-dir {}",
            dockfw.display(),
            run_dir.display()
        ),
        "  scrape its metrics (served inside the host namespace):".into(),
        format!("    nsenter --net={} \\", host.display()),
        format!("      curl -s http://{}/metrics", enforcer::METRICS_ADDR),
        "  request the page as the client:".into(),
        format!("    nsenter --net={} \\", wan.display()),
        format!("      curl -s http://{HOST_ADDR}:{WEB_PORT}/"),
        "  the Docker engine:".into(),
        format!("    DOCKER_HOST={} docker ps", topology.engine.host_url()),
        "  tear it all down:".into(),
        format!("    {demo} --teardown"),
        "    (or: cargo xtask demo --teardown)".into(),
    ];
    for line in lines {
        screen.line(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_intro_fits_80_columns() {
        let options = Options {
            rate: 20_000_000,
            legit_rate: 2_000,
            duration: std::time::Duration::from_secs(3600),
            keep: false,
        };
        for line in intro_lines(&options) {
            assert!(
                line.chars().count() <= 80,
                "{} columns: {line}",
                line.chars().count()
            );
        }
    }
}
