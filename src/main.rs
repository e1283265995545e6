//! The `macsec` command: `pcap`, `forward`, `keygen`, `demo`.

use clap::{Parser, Subcommand};
use macsec::config::{Config, ConfigError, KeyFilePolicy};
use macsec::pcap::{self, Direction};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit status for configuration and usage errors.
const EXIT_CONFIG: u8 = 2;
/// Exit status for runtime errors (files, interfaces).
const EXIT_RUNTIME: u8 = 1;

#[derive(Parser)]
#[command(
    name = "macsec",
    version,
    about = "IEEE 802.1AE MACsec data plane: protect and validate Ethernet frames"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Protect or validate the frames of a capture file.
    Pcap {
        #[command(subcommand)]
        op: PcapOp,
    },
}

#[derive(Subcommand)]
enum PcapOp {
    /// Protect every frame with the encoding transmit SA; PNs count up from its `pn`.
    Encrypt(PcapArgs),
    /// Validate every frame; write the restored frames that validation delivers.
    Decrypt(PcapArgs),
}

#[derive(clap::Args)]
struct PcapArgs {
    /// TOML configuration ([secy] section).
    #[arg(long, short)]
    config: PathBuf,
    /// Accept key files that group or others can read (unsafe).
    #[arg(long)]
    unsafe_key_permissions: bool,
    /// Input capture (pcap or pcapng, Ethernet).
    input: PathBuf,
    /// Output capture (pcap).
    output: PathBuf,
}

fn policy(unsafe_perms: bool) -> KeyFilePolicy {
    if unsafe_perms {
        KeyFilePolicy::AllowUnsafePermissions
    } else {
        KeyFilePolicy::Strict
    }
}

fn config_error(e: &ConfigError) -> ExitCode {
    eprintln!("macsec: config error: {e}");
    ExitCode::from(EXIT_CONFIG)
}

fn run_pcap(dir: Direction, a: &PcapArgs) -> ExitCode {
    let cfg = match Config::load(&a.config, policy(a.unsafe_key_permissions)) {
        Ok(c) => c,
        Err(e) => return config_error(&e),
    };
    if let Err(e) = cfg.reject_unknown_sections(&["mka", "forward"]) {
        return config_error(&e);
    }
    let s = &cfg.secy;
    if dir == Direction::Encrypt {
        if !s.sci_set {
            return config_error(&ConfigError::Field {
                field: "secy.sci".into(),
                problem: "missing: encrypt needs this SecY's transmit SCI (16 hex digits)".into(),
            });
        }
        if s.tx.sas.is_empty() {
            return config_error(&ConfigError::Field {
                field: "secy.tx.sa".into(),
                problem: "missing: encrypt needs at least one [[secy.tx.sa]]".into(),
            });
        }
    } else if s.rx.is_empty() {
        return config_error(&ConfigError::Field {
            field: "secy.rx".into(),
            problem: "missing: decrypt needs at least one [[secy.rx]] receive SC".into(),
        });
    }
    let mut secy = match s.build() {
        Ok(s) => s,
        Err(e) => return config_error(&e),
    };
    match pcap::run(&mut secy, dir, &a.input, &a.output) {
        Ok(totals) => {
            let out = serde_json::json!({
                "mode": if dir == Direction::Encrypt { "encrypt" } else { "decrypt" },
                "frames": totals,
                "counters": secy.stats(),
            });
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("macsec: {e}");
            let out = serde_json::json!({ "error": e.to_string(), "counters": secy.stats() });
            println!("{out}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.cmd {
        Cmd::Pcap { op } => match op {
            PcapOp::Encrypt(a) => run_pcap(Direction::Encrypt, a),
            PcapOp::Decrypt(a) => run_pcap(Direction::Decrypt, a),
        },
    }
}
