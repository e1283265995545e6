//! The `macsec` command: `pcap`, `forward`, `status`, `keygen`, `demo`.

use clap::builder::TypedValueParser;
use clap::{Parser, Subcommand};
use macsec_forward::config::{Config, ConfigError, KeyFilePolicy};
use macsec_forward::pcap::{self, Direction};
use std::path::PathBuf;
use std::process::ExitCode;

mod demo;
mod status;

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
    /// Forward frames between a plain and a secure interface, protecting and validating.
    Forward {
        /// TOML configuration ([ports], [secy], optional [forward] and [mka]).
        #[arg(long, short)]
        config: PathBuf,
        /// Accept key files, and configs with keys inline, that group or others can read (unsafe).
        #[arg(long)]
        unsafe_key_permissions: bool,
        /// Refuse to start instead of fixing interface state, MTU or offloads.
        #[arg(long)]
        check_only: bool,
        /// Log lines as text, or as one JSON object per line (for journald, Loki, ...).
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
    /// Show each running forwarder's links: secured, MKA peers and keys, RTT and loss,
    /// traffic and 802.1AE errors. Exit status 0 when every link is secured, 1 otherwise.
    Status {
        /// The forwarder to ask (its config file's name without .toml); default: all in --dir.
        #[arg(conflicts_with = "socket")]
        name: Option<String>,
        /// Ask the control socket at this path.
        #[arg(long)]
        socket: Option<PathBuf>,
        /// Where the forwarders' sockets are.
        #[arg(long, default_value = macsec_forward::control::DEFAULT_DIR)]
        dir: PathBuf,
        /// One JSON document (an array of the forwarders' answers) instead of text.
        #[arg(long)]
        json: bool,
        /// The last 50 events (link up/down, secured, rekey, failover) instead of the status.
        #[arg(long)]
        events: bool,
    },
    /// Re-read the key chain ([mka] keys, policy) of running forwarders and have their key
    /// servers distribute a fresh SAK (as SIGHUP does). Exit status 0 when every one did.
    Reload {
        /// The forwarder (its config file's name without .toml); default: all in --dir.
        #[arg(conflicts_with = "socket")]
        name: Option<String>,
        /// Its control socket.
        #[arg(long)]
        socket: Option<PathBuf>,
        /// Where the forwarders' sockets are.
        #[arg(long, default_value = macsec_forward::control::DEFAULT_DIR)]
        dir: PathBuf,
    },
    /// Have running forwarders' key servers distribute a fresh SAK now.
    Rekey {
        /// The forwarder (its config file's name without .toml); default: all in --dir.
        #[arg(conflicts_with = "socket")]
        name: Option<String>,
        /// Its control socket.
        #[arg(long)]
        socket: Option<PathBuf>,
        /// Where the forwarders' sockets are.
        #[arg(long, default_value = macsec_forward::control::DEFAULT_DIR)]
        dir: PathBuf,
    },
    /// Show the whole thing working: builds a namespace topology with two forwarders,
    /// pings, measures, prints the counters, and removes it all again (needs root).
    Demo {
        /// Cipher suite.
        #[arg(long, default_value = "gcm-aes-128")]
        cipher: String,
        /// Integrity only (no encryption).
        #[arg(long)]
        integrity_only: bool,
        /// Secure links between the forwarders (1 to 4); with 2 or more the demo also
        /// shows a failover.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=4))]
        links: u8,
    },
    /// Generate a fresh CKN and CAK for MKA, as one activation key for both ends.
    Keygen {
        /// CAK length in bits.
        #[arg(long, default_value_t = 256, value_parser = clap::builder::PossibleValuesParser::new(["128", "256"]).map(|s| s.parse::<u32>().unwrap_or(256)))]
        bits: u32,
        /// Also write the activation key to this file (created with mode 0600).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// How `forward` writes its log lines.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Text, one event per line.
    Text,
    /// One JSON object per line, fields at the top level.
    Json,
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
    /// Accept key files, and configs with keys inline, that group or others can read (unsafe).
    #[arg(long)]
    unsafe_key_permissions: bool,
    /// Input capture (pcap or pcapng, Ethernet).
    input: PathBuf,
    /// Output capture (pcap); not the input. Replaced only when the run succeeds.
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
            if totals.last_record_cut {
                eprintln!(
                    "macsec: warning: {}: the file ends inside its last record (was the capture \
                     stopped while writing it?); that record is skipped, the {} frame(s) before \
                     it were read",
                    a.input.display(),
                    totals.read
                );
            }
            if totals.macsec_behind_vlan_tags > 0 {
                eprintln!(
                    "macsec: {} MACsec frame(s) sit behind {} VLAN tag(s) that the configuration \
                     does not keep in clear, so they were not validated: set \
                     secy.vlan_in_clear = {}",
                    totals.macsec_behind_vlan_tags,
                    totals.vlan_tags_needed,
                    totals.vlan_tags_needed
                );
            }
            let out = serde_json::json!({
                "mode": if dir == Direction::Encrypt { "encrypt" } else { "decrypt" },
                "frames": totals,
                "counters": secy.stats(),
            });
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) if e.is_usage() => {
            eprintln!("macsec: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(e) => {
            eprintln!("macsec: {e}");
            let out = serde_json::json!({ "error": e.to_string(), "counters": secy.stats() });
            println!("{out}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

fn run_keygen(bits: u32, out: Option<&std::path::Path>) -> ExitCode {
    use macsec::mka::ActivationKey;
    let key = match ActivationKey::generate(bits as usize / 8) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("macsec: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let text = key.encode();
    if let Some(path) = out {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .and_then(|mut f| f.write_all(format!("{}\n", text.as_str()).as_bytes()));
        if let Err(e) = written {
            eprintln!("macsec: cannot create {}: {e}", path.display());
            return ExitCode::from(EXIT_RUNTIME);
        }
    }
    let ckn = hex::encode(key.ckn.as_bytes());
    println!("# MKA pre-shared key: CKN {ckn}, {bits}-bit CAK. Keep the activation key secret.");
    println!("# Paste the same key at both ends of the link.");
    println!("activation key: {}", text.as_str());
    println!();
    println!("# Config snippet for `macsec forward` (both ends):");
    println!("[mka]");
    match out {
        Some(p) => println!("activation_key_file = \"{}\"   # mode 0600", p.display()),
        None => println!("activation_key = \"{}\"", text.as_str()),
    }
    println!("priority = 16            # lower value wins the key server election");
    // The suite that matches the CAK's strength; a 128-bit CAK is what wpa_supplicant
    // 2.10 peers use, and they only do gcm-aes-128.
    let suite = if bits == 128 {
        "gcm-aes-128"
    } else {
        "gcm-aes-256"
    };
    println!("cipher = \"{suite}\"   # what this end distributes as key server (wpa_supplicant 2.10 peers: gcm-aes-128)");
    println!();
    println!("# The same CA for a wpa_supplicant peer (network block, -D macsec_linux):");
    let cak = zeroize::Zeroizing::new(hex::encode(key.cak.expose_secret()));
    println!(
        "#   key_mgmt=NONE eapol_flags=0 macsec_policy=1 mka_ckn={ckn} mka_cak={}",
        cak.as_str()
    );
    ExitCode::SUCCESS
}

/// Logs go to stderr; `MACSEC_LOG` (or `RUST_LOG`) sets the filter, default `info`.
/// As JSON, each line is one object: `timestamp`, `level`, `message` and the event's
/// fields (`event`, `link`, ...) at the top level.
fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("MACSEC_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.cmd {
        Cmd::Pcap { op } => match op {
            PcapOp::Encrypt(a) => run_pcap(Direction::Encrypt, a),
            PcapOp::Decrypt(a) => run_pcap(Direction::Decrypt, a),
        },
        Cmd::Forward {
            config,
            unsafe_key_permissions,
            check_only,
            log_format,
        } => {
            init_logging(*log_format);
            tracing::info!(
                "macsec {} forward: config {}",
                env!("CARGO_PKG_VERSION"),
                config.display()
            );
            let opts = macsec_forward::forward::runtime::Options {
                config: config.clone(),
                key_policy: policy(*unsafe_key_permissions),
                check_only: *check_only,
            };
            match macsec_forward::forward::runtime::run(&opts) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("macsec forward: {e}");
                    ExitCode::from(e.exit_code())
                }
            }
        }
        Cmd::Demo {
            cipher,
            integrity_only,
            links,
        } => {
            let Ok(cipher) = cipher.parse() else {
                eprintln!("macsec demo: --cipher {cipher:?}: use gcm-aes-128, gcm-aes-256, gcm-aes-xpn-128 or gcm-aes-xpn-256");
                return ExitCode::from(EXIT_CONFIG);
            };
            let opts = crate::demo::DemoOptions {
                cipher,
                integrity_only: *integrity_only,
                links: usize::from(*links),
            };
            let bin = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("macsec"));
            match crate::demo::run(&opts, &bin) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(EXIT_RUNTIME),
                Err(e) => {
                    eprintln!("macsec demo: {e}");
                    ExitCode::from(EXIT_RUNTIME)
                }
            }
        }
        Cmd::Keygen { bits, out } => run_keygen(*bits, out.as_deref()),
        Cmd::Reload { name, socket, dir } | Cmd::Rekey { name, socket, dir } => {
            let cmd = if matches!(cli.cmd, Cmd::Reload { .. }) {
                macsec_forward::control::Command::Reload
            } else {
                macsec_forward::control::Command::Rekey
            };
            status::send(
                &status::Args {
                    name: name.clone(),
                    socket: socket.clone(),
                    dir: dir.clone(),
                    json: false,
                    events: false,
                },
                cmd,
            )
        }
        Cmd::Status {
            name,
            socket,
            dir,
            json,
            events,
        } => status::run(&status::Args {
            name: name.clone(),
            socket: socket.clone(),
            dir: dir.clone(),
            json: *json,
            events: *events,
        }),
    }
}
