//! Root tests of [`macsec_testkit::netlab`]: real namespaces, veth pairs, bridges, pings,
//! offloads, signals and privilege drops. Namespaces are named `nlt<pid>-<n>-<tag>` and
//! removed on drop. Child processes are this test binary re-executed (see
//! [`helper_entry_point_not_a_test`]), never an outside program. Every test needing root
//! is named `root_*` and fails without root (see [`macsec_testkit::root`]).

use macsec_testkit::netlab::link::{self, IfIndexes, OperState, Veth};
use macsec_testkit::netlab::netns::Netns;
use macsec_testkit::netlab::ping::{self, PingOpts, Pinger};
use macsec_testkit::netlab::proc::{self, Signal};
use macsec_testkit::netlab::{ethtool, ip, netns, privs, sysctl};
use macsec_testkit::root::require as require_root;
use std::net::Ipv4Addr;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const EMSGSIZE: i32 = 90;

/// A namespace with `lo` up, deleted on drop.
struct Ns(Netns);

impl Ns {
    fn new(tag: &str) -> Ns {
        let ns = Ns(Netns::unique("nlt", tag).unwrap());
        link::set_up(&ns, "lo").unwrap();
        ns
    }
}

impl std::ops::Deref for Ns {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// Two namespaces joined by veth `a0`/`b0` with `mtu`, up, addressed 10.77.<net>.1 and .2.
fn pair(tag: &str, net: u8, mtu: u32) -> (Ns, Ns, Ipv4Addr, Ipv4Addr) {
    let (a, b) = (Ns::new(&format!("{tag}a")), Ns::new(&format!("{tag}b")));
    let opts = Veth {
        mtu: Some(mtu),
        ..Veth::default()
    };
    link::add_veth(&a, "a0", &b, "b0", &opts).unwrap();
    let (ia, ib) = (Ipv4Addr::new(10, 77, net, 1), Ipv4Addr::new(10, 77, net, 2));
    ip::add_addr(&a, "a0", ia, 24).unwrap();
    ip::add_addr(&b, "b0", ib, 24).unwrap();
    link::set_up(&a, "a0").unwrap();
    link::set_up(&b, "b0").unwrap();
    running(&a, "a0");
    running(&b, "b0");
    (a, b, ia, ib)
}

/// `count` echo requests 20 ms apart.
fn quick(count: u32) -> PingOpts {
    PingOpts {
        count,
        interval: Duration::from_millis(20),
        ..PingOpts::default()
    }
}

/// Waits until `dev` is operationally up (carrier, qdisc attached): until then the
/// kernel drops what is sent, ARP requests included.
fn running(ns: &str, dev: &str) {
    link::wait_running(ns, dev, Duration::from_secs(3)).unwrap();
}

/// Starts this binary as a helper (`NETLAB_HELPER=role`), optionally inside `ns`.
fn helper_cmd(role: &str) -> Command {
    helper_cmd_of(&std::env::current_exe().unwrap(), role)
}

/// This test binary in a new directory `dir` (mode 0755) that every user can enter: a
/// hard link where the file system allows it (no copy of a large binary racing the
/// timing of other tests), else a copy.
fn executable_by_anyone(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let me = std::env::current_exe().unwrap();
    let exe = dir.join("helper");
    if std::fs::hard_link(&me, &exe).is_err() {
        std::fs::copy(&me, &exe).unwrap();
    }
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    exe
}

/// [`helper_cmd`] running `exe`, a copy of this binary.
fn helper_cmd_of(exe: &std::path::Path, role: &str) -> Command {
    let mut c = Command::new(exe);
    c.args([
        "--exact",
        "helper_entry_point_not_a_test",
        "--nocapture",
        "--test-threads=1",
        "--quiet",
    ])
    .env("NETLAB_HELPER", role)
    .stdin(Stdio::null());
    c
}

/// Reads the helper's output up to its "ready" line.
fn wait_ready(child: &mut std::process::Child) {
    let out = std::io::BufReader::new(child.stdout.as_mut().unwrap());
    let mut lines = std::io::BufRead::lines(out);
    for _ in 0..10 {
        match lines.next() {
            Some(Ok(l)) if l == "ready" => return,
            Some(Ok(_)) => continue,
            other => panic!("helper said {other:?}"),
        }
    }
    panic!("helper not ready");
}

/// Not a test: the entry point of re-executed helpers; does nothing in a normal run.
#[test]
fn helper_entry_point_not_a_test() {
    let Ok(role) = std::env::var("NETLAB_HELPER") else {
        eprintln!(
            "not a test: the entry point of this binary re-executed as a helper; nothing to do"
        );
        return;
    };
    match role.as_str() {
        "sleep" | "stubborn" => {
            if role == "stubborn" {
                let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
                signal_hook::flag::register(signal_hook::consts::SIGTERM, flag).unwrap();
            }
            println!("ready");
            std::thread::sleep(Duration::from_secs(30));
            std::process::exit(3);
        }
        "echo" => {
            println!("to stdout");
            eprintln!("to stderr");
            std::process::exit(7);
        }
        "privs" => {
            // A copy of this binary that `nobody` can run (made by the test).
            let exe = std::path::PathBuf::from(std::env::var_os("NETLAB_HELPER_EXE").unwrap());
            let mut child = privs::spawn_unprivileged(
                &mut helper_cmd_of(&exe, "unprivileged"),
                privs::NOBODY,
                privs::NOBODY,
                &[
                    privs::Capability::CAP_NET_RAW,
                    privs::Capability::CAP_NET_ADMIN,
                ],
            )
            .unwrap();
            let st = proc::wait_timeout(&mut child, Duration::from_secs(20))
                .unwrap()
                .unwrap();
            std::process::exit(st.code().unwrap_or(100));
        }
        "unprivileged" => {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            for l in status
                .lines()
                .filter(|l| l.starts_with("Uid:") || l.starts_with("Gid:") || l.starts_with("Cap"))
            {
                println!("{l}");
            }
            let raw = socket2::Socket::new(
                socket2::Domain::IPV4,
                socket2::Type::RAW,
                Some(socket2::Protocol::ICMPV4),
            );
            println!("raw socket: {}", if raw.is_ok() { "ok" } else { "refused" });
            let fwd = std::fs::write("/proc/sys/net/ipv4/ip_forward", "1");
            println!(
                "ip_forward: {}",
                if fwd.is_ok() { "written" } else { "refused" }
            );
            let sys_admin = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET);
            println!(
                "unshare: {}",
                if sys_admin.is_ok() { "ok" } else { "refused" }
            );
            std::process::exit(0);
        }
        other => panic!("unknown helper role {other}"),
    }
}

#[test]
fn root_namespace_add_list_exists_del() {
    require_root();
    let ns = Ns::new("basic");
    assert!(netns::exists(&ns));
    assert!(netns::list().unwrap().contains(&ns.to_string()));
    assert!(std::path::Path::new(&format!("/run/netns/{}", &*ns)).exists());
    let e = netns::add(&ns).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
    assert!(
        e.to_string().starts_with(&format!("netns {}: add", &*ns)),
        "{e}"
    );
    // Its own loopback, not the host's interfaces.
    let links = link::list(&ns).unwrap();
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!(links[0].name, "lo");
    let name = ns.0.name().to_owned();
    drop(ns);
    assert!(!netns::exists(&name));
    assert!(!netns::list().unwrap().contains(&name));
    assert_eq!(
        netns::del(&name).unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
    assert!(netns::add("a/b").is_err());
}

#[test]
fn root_namespace_del_kills_processes_inside() {
    require_root();
    let ns = Ns::new("pids");
    let mut child = netns::spawn_in(&ns, helper_cmd("sleep").stdout(Stdio::piped())).unwrap();
    wait_ready(&mut child);
    assert_eq!(netns::pids(&ns).unwrap(), vec![child.id()]);
    let theirs = std::fs::metadata(format!("/proc/{}/ns/net", child.id())).unwrap();
    let named = std::fs::metadata(netns::path_of(&ns)).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((theirs.dev(), theirs.ino()), (named.dev(), named.ino()));
    let name = ns.0.name().to_owned();
    drop(ns);
    let st = proc::wait_timeout(&mut child, Duration::from_secs(5))
        .unwrap()
        .expect("killed");
    assert_eq!(st.signal(), Some(9));
    assert!(!netns::exists(&name));
}

#[test]
fn root_stale_namespaces_are_swept() {
    require_root();
    // A pid above pid_max cannot be running.
    let name = format!("nlts{}-x", 4_194_305 + std::process::id() % 1000);
    netns::add(&name).unwrap();
    let gone = netns::sweep_stale("nlts");
    assert!(gone.contains(&name), "{gone:?}");
    assert!(!netns::exists(&name));
}

#[test]
fn root_veth_across_namespaces_with_distinct_ifindexes() {
    require_root();
    let (x, y) = (Ns::new("vx"), Ns::new("vy"));
    let opts = Veth {
        mtu: Some(9000),
        ..Veth::default()
    };
    let (i, j) = link::add_veth(&x, "x0", &y, "y0", &opts).unwrap();
    assert_ne!(i, j);
    let (lx, ly) = (link::get(&x, "x0").unwrap(), link::get(&y, "y0").unwrap());
    assert_eq!((lx.index, ly.index), (i, j));
    assert_eq!((lx.mtu, ly.mtu), (9000, 9000));
    assert_eq!(lx.kind.as_deref(), Some("veth"));
    assert!(lx.mac.is_some() && lx.mac != ly.mac);
    assert!(!lx.up && lx.operstate == OperState::Down);
    // The peer is not in the first namespace, nor the first end in the second.
    assert_eq!(link::get(&x, "y0").unwrap_err().raw_os_error(), Some(19));

    let explicit = Veth {
        mtu: None,
        ifindexes: IfIndexes::Explicit(40, 50),
    };
    assert_eq!(
        link::add_veth(&x, "x1", &y, "y1", &explicit).unwrap(),
        (40, 50)
    );
    assert_eq!(link::get(&y, "y1").unwrap().mtu, 1500);
    let kernel = Veth {
        mtu: None,
        ifindexes: IfIndexes::Kernel,
    };
    let (k1, k2) = link::add_veth(&x, "x2", &y, "y2", &kernel).unwrap();
    eprintln!("kernel-chosen ifindexes: {k1} {k2}");

    let e = link::add_veth(&x, "x0", &y, "y9", &opts).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(17));
    assert_eq!(
        e.to_string(),
        format!(
            "netns {}: veth x0/y9: RTM_NEWLINK: File exists (os error 17)",
            &*x
        )
    );
}

#[test]
fn root_ping_56_and_8972_with_df_over_mtu_9000() {
    require_root();
    let (a, _b, _ia, ib) = pair("p9k", 1, 9000);
    let opts = quick(3);
    let r = ping::ping(&a, ib, &opts).unwrap();
    assert_eq!((r.sent, r.received, r.bad), (3, 3, 0), "{r:?}");
    assert!(
        r.min_us > 0.0 && r.min_us <= r.avg_us && r.avg_us <= r.max_us,
        "{r:?}"
    );
    assert_eq!(
        r.echoes.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    let jumbo = PingOpts {
        size: 8972,
        count: 2,
        dont_fragment: true,
        ..opts
    };
    let r = ping::ping(&a, ib, &jumbo).unwrap();
    assert_eq!((r.sent, r.received, r.bad), (2, 2, 0), "{r:?}");
    // No reply from an address nobody has.
    let lost = PingOpts {
        timeout: Duration::from_millis(200),
        ..opts
    };
    let r = ping::ping(&a, Ipv4Addr::new(10, 77, 1, 9), &lost).unwrap();
    assert_eq!((r.sent, r.received, r.lost()), (3, 0, 3));
    assert!(r.avg_us.is_nan());
}

#[test]
fn root_df_ping_of_8972_over_mtu_1500_does_not_leave() {
    require_root();
    let (a, _b, _ia, ib) = pair("p15", 2, 1500);
    let df = PingOpts {
        size: 8972,
        dont_fragment: true,
        ..quick(2)
    };
    let r = ping::ping(&a, ib, &df).unwrap();
    assert_eq!((r.sent, r.received), (2, 0), "{r:?}");
    assert!(
        r.echoes.iter().all(|e| e.send_error == Some(EMSGSIZE)),
        "{r:?}"
    );
    // Without DF the kernel fragments, and the reply is reassembled.
    let r = ping::ping(
        &a,
        ib,
        &PingOpts {
            dont_fragment: false,
            ..df
        },
    )
    .unwrap();
    assert_eq!((r.sent, r.received, r.bad), (2, 2, 0), "{r:?}");
    // 1472 octets with DF fill a 1500-octet packet exactly.
    let r = ping::ping(&a, ib, &PingOpts { size: 1472, ..df }).unwrap();
    assert_eq!(r.received, 2, "{r:?}");
}

#[test]
fn root_bridge_forwards_between_two_namespaces() {
    require_root();
    let (a, b, m) = (Ns::new("bra"), Ns::new("brb"), Ns::new("brm"));
    let opts = Veth {
        mtu: Some(9000),
        ..Veth::default()
    };
    link::add_veth(&a, "a0", &m, "pa", &opts).unwrap();
    link::add_veth(&b, "b0", &m, "pb", &opts).unwrap();
    let br = link::add_bridge(&m, "br0").unwrap();
    for p in ["pa", "pb"] {
        link::enslave(&m, p, "br0").unwrap();
        link::set_up(&m, p).unwrap();
    }
    link::set_mtu(&m, "br0", 9000).unwrap();
    link::set_up(&m, "br0").unwrap();
    assert_eq!(link::get(&m, "pa").unwrap().master, Some(br));
    assert_eq!(
        link::get(&m, "br0").unwrap().kind.as_deref(),
        Some("bridge")
    );
    let ib = Ipv4Addr::new(10, 77, 3, 2);
    ip::add_addr(&a, "a0", Ipv4Addr::new(10, 77, 3, 1), 24).unwrap();
    ip::add_addr(&b, "b0", ib, 24).unwrap();
    assert_eq!(ip::addrs(&b, "b0").unwrap(), vec![(ib, 24)]);
    link::set_up(&a, "a0").unwrap();
    link::set_up(&b, "b0").unwrap();
    // Bridge ports forward once the kernel has seen their carrier come up.
    for (ns, dev) in [(&a, "a0"), (&b, "b0"), (&m, "pa"), (&m, "pb")] {
        running(ns, dev);
    }
    let opts = quick(3);
    let r = ping::ping(&a, ib, &opts).unwrap();
    assert_eq!(r.received, 3, "{r:?}");
    let jumbo = PingOpts {
        size: 8972,
        dont_fragment: true,
        ..opts
    };
    assert_eq!(ping::ping(&a, ib, &jumbo).unwrap().received, 3);
    // A narrower port on the way: the bridge drops what does not fit, nothing comes back.
    link::set_mtu(&m, "pb", 1500).unwrap();
    let r = ping::ping(
        &a,
        ib,
        &PingOpts {
            timeout: Duration::from_millis(300),
            ..jumbo
        },
    )
    .unwrap();
    assert_eq!((r.sent, r.received), (3, 0), "{r:?}");
    assert!(r.echoes.iter().all(|e| e.send_error.is_none()));
    assert_eq!(ping::ping(&a, ib, &opts).unwrap().received, 3);
}

#[test]
fn root_routes_via_a_gateway() {
    require_root();
    // a --- r --- b, with r forwarding and default routes on a and b.
    let (a, r, b) = (Ns::new("rta"), Ns::new("rtr"), Ns::new("rtb"));
    link::add_veth(&a, "a0", &r, "ra", &Veth::default()).unwrap();
    link::add_veth(&b, "b0", &r, "rb", &Veth::default()).unwrap();
    let gw_a = Ipv4Addr::new(10, 77, 4, 254);
    let gw_b = Ipv4Addr::new(10, 77, 5, 254);
    let ib = Ipv4Addr::new(10, 77, 5, 1);
    ip::add_addr(&a, "a0", Ipv4Addr::new(10, 77, 4, 1), 24).unwrap();
    ip::add_addr(&r, "ra", gw_a, 24).unwrap();
    ip::add_addr(&r, "rb", gw_b, 24).unwrap();
    ip::add_addr(&b, "b0", ib, 24).unwrap();
    for (ns, dev) in [(&a, "a0"), (&r, "ra"), (&r, "rb"), (&b, "b0")] {
        link::set_up(ns, dev).unwrap();
    }
    for (ns, dev) in [(&a, "a0"), (&r, "ra"), (&r, "rb"), (&b, "b0")] {
        running(ns, dev);
    }
    sysctl::set(&r, "net.ipv4.ip_forward", "1").unwrap();
    ip::add_route(&a, &ip::Route::default_via(gw_a)).unwrap();
    let back = ip::Route {
        dst: Ipv4Addr::new(10, 77, 4, 0),
        prefix: 24,
        via: Some(gw_b),
        dev: Some("b0".into()),
        advmss: Some(1000),
    };
    ip::add_route(&b, &back).unwrap();
    let e = ip::add_route(&b, &back).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(17), "{e}");
    assert!(
        e.to_string()
            .contains("route 10.77.4.0/24 via 10.77.5.254 dev b0: RTM_NEWROUTE"),
        "{e}"
    );
    let opts = quick(2);
    assert_eq!(ping::ping(&a, ib, &opts).unwrap().received, 2);
}

#[test]
fn root_link_down_up_is_seen_as_carrier_change_on_the_peer() {
    require_root();
    let (a, b, _, _) = pair("car", 6, 1500);
    let t = Duration::from_secs(3);
    link::wait(&b, "b0", t, |l| l.carrier && l.operstate == OperState::Up).unwrap();
    let start = Instant::now();
    link::set_down(&a, "a0").unwrap();
    let l = link::wait(&b, "b0", t, |l| !l.carrier).unwrap();
    let down = start.elapsed();
    assert!(l.up && !l.lower_up, "{l:?}");
    // LOWERLAYERDOWN only when the kernel finds the peer in the same namespace.
    let l = link::wait(&b, "b0", t, |l| l.operstate != OperState::Up).unwrap();
    assert_eq!(l.operstate, OperState::Down);
    assert!(!link::get(&a, "a0").unwrap().up);
    let start = Instant::now();
    link::set_up(&a, "a0").unwrap();
    link::wait(&b, "b0", t, |l| l.carrier).unwrap();
    let up = start.elapsed();
    eprintln!("carrier on the peer: down after {down:?}, up after {up:?}");
    assert!(down < Duration::from_millis(300) && up < Duration::from_millis(300));
}

#[test]
fn root_mtu_change_and_errors_name_the_link() {
    require_root();
    let (a, b, _, ib) = pair("mtu", 7, 1500);
    link::set_mtu(&a, "a0", 9000).unwrap();
    assert_eq!(link::get(&a, "a0").unwrap().mtu, 9000);
    assert_eq!(link::get(&b, "b0").unwrap().mtu, 1500);
    // a0 sends 9000-octet packets now, but b0 still drops them; then it takes them.
    let jumbo = PingOpts {
        size: 8972,
        count: 2,
        interval: Duration::from_millis(20),
        timeout: Duration::from_millis(300),
        dont_fragment: true,
    };
    let r = ping::ping(&a, ib, &jumbo).unwrap();
    assert_eq!((r.sent, r.received), (2, 0), "{r:?}");
    assert!(r.echoes.iter().all(|e| e.send_error.is_none()), "{r:?}");
    link::set_mtu(&b, "b0", 9000).unwrap();
    assert_eq!(ping::ping(&a, ib, &jumbo).unwrap().received, 2);
    let e = link::set_mtu(&a, "a0", 10).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(22));
    assert!(
        e.to_string().starts_with(&format!(
            "netns {}: link a0: RTM_SETLINK mtu 10: Invalid argument (os error 22)",
            &*a
        )),
        "{e}"
    );
    let e = link::set_up(&a, "nosuch").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(19), "{e}");
}

#[test]
fn root_delete_and_recreate_a_link() {
    require_root();
    let (a, b, _, ib) = pair("del", 8, 1500);
    link::del(&a, "a0").unwrap();
    assert_eq!(link::get(&a, "a0").unwrap_err().raw_os_error(), Some(19));
    // Deleting one end of a veth deletes the other, in its namespace, at once.
    assert_eq!(link::get(&b, "b0").unwrap_err().raw_os_error(), Some(19));
    link::add_veth(&a, "a0", &b, "b0", &Veth::default()).unwrap();
    ip::add_addr(&a, "a0", Ipv4Addr::new(10, 77, 8, 1), 24).unwrap();
    ip::add_addr(&b, "b0", ib, 24).unwrap();
    link::set_up(&a, "a0").unwrap();
    link::set_up(&b, "b0").unwrap();
    running(&a, "a0");
    running(&b, "b0");
    let opts = quick(2);
    assert_eq!(ping::ping(&a, ib, &opts).unwrap().received, 2);
}

#[test]
fn root_sysctl_is_per_namespace() {
    require_root();
    let (x, y) = (Ns::new("sx"), Ns::new("sy"));
    let key = "net.ipv6.conf.all.disable_ipv6";
    assert_eq!(sysctl::get(&x, key).unwrap(), "0");
    sysctl::set(&x, key, "1").unwrap();
    assert_eq!(sysctl::get(&x, key).unwrap(), "1");
    assert_eq!(sysctl::get(&y, key).unwrap(), "0");
    sysctl::set(&y, "net/ipv4/ping_group_range", "0 2147483647").unwrap();
    assert_eq!(
        sysctl::get(&y, "net.ipv4.ping_group_range").unwrap(),
        "0\t2147483647"
    );
    assert_ne!(
        sysctl::get(&x, "net.ipv4.ping_group_range").unwrap(),
        "0\t2147483647"
    );
    let e = sysctl::get(&x, "net.ipv4.nosuchkey").unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    assert!(
        e.to_string().contains("sysctl net.ipv4.nosuchkey: read"),
        "{e}"
    );
}

#[test]
fn root_background_pinger_counts_the_loss_of_a_link_outage() {
    require_root();
    let (a, b, _, ib) = pair("gap", 9, 1500);
    // Every 10 ms, up to 1000 of them; a reply may take 500 ms.
    let mut opts = quick(1000);
    opts.interval = Duration::from_millis(10);
    opts.timeout = Duration::from_millis(500);
    let start = Instant::now();
    let pinger = Pinger::start(&a, ib, &opts).unwrap();
    // The far end goes down for 300 ms: requests leave, nothing comes back. Requests
    // queued behind a0's ARP resolution (retried once a second) come back late.
    std::thread::sleep(Duration::from_millis(400));
    let down = start.elapsed();
    link::set_down(&b, "b0").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    link::set_up(&b, "b0").unwrap();
    let outage = start.elapsed() - down;
    std::thread::sleep(Duration::from_millis(1300));
    // The near end goes down for 100 ms: no route, sending fails (ENETUNREACH).
    link::set_down(&a, "a0").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    link::set_up(&a, "a0").unwrap();
    std::thread::sleep(Duration::from_millis(400));
    assert!(!pinger.is_finished());
    let r = pinger.stop().unwrap();
    let gap = r.longest_gap().unwrap();
    let failed = r
        .echoes
        .iter()
        .filter(|e| e.send_error == Some(101))
        .count();
    eprintln!(
        "sent {} received {} lost {} (send errors {failed}) streak {} gap {gap:?} (outage {outage:?}), rtt {:.0}/{:.0}/{:.0} us",
        r.sent, r.received, r.lost(), r.longest_loss_streak(), r.min_us, r.avg_us, r.max_us
    );
    assert_eq!(r.bad, 0);
    assert_eq!(r.sent as usize, r.echoes.len());
    assert_eq!(r.received + r.lost(), r.sent);
    assert!((230..=290).contains(&r.sent), "{}", r.sent);
    assert!(r.longest_loss_streak() >= 20, "{}", r.longest_loss_streak());
    assert!(
        gap >= outage - Duration::from_millis(50) && gap <= outage + Duration::from_millis(1200),
        "{gap:?}"
    );
    assert!((5..=15).contains(&failed), "{failed}");
    // Before, between and after the outages, everything came back.
    let ok = |from: Duration, to: Duration| {
        r.echoes
            .iter()
            .filter(|e| e.sent_at >= from && e.sent_at < to)
            .all(|e| e.rtt.is_some())
    };
    assert!(ok(Duration::ZERO, down - Duration::from_millis(20)));
    assert!(ok(
        down + outage + Duration::from_millis(1100),
        down + outage + Duration::from_millis(1280)
    ));
    assert!(r.echoes[r.echoes.len() - 10..]
        .iter()
        .all(|e| e.rtt.is_some()));
}

#[test]
fn signals_and_bounded_waits() {
    for (sig, n) in [
        (Signal::SIGTERM, 15),
        (Signal::SIGUSR1, 10),
        (Signal::SIGHUP, 1),
        (Signal::SIGKILL, 9),
    ] {
        let mut c = helper_cmd("sleep").stdout(Stdio::null()).spawn().unwrap();
        assert!(proc::wait_timeout(&mut c, Duration::from_millis(50))
            .unwrap()
            .is_none());
        proc::signal(c.id(), sig).unwrap();
        let st = proc::wait_timeout(&mut c, Duration::from_secs(5))
            .unwrap()
            .expect("exited");
        assert_eq!(st.signal(), Some(n), "{sig}");
    }
    // A process that ignores SIGTERM: terminate() escalates to SIGKILL.
    let mut c = helper_cmd("stubborn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_ready(&mut c);
    let start = Instant::now();
    let st = proc::terminate(&mut c, Duration::from_millis(200)).unwrap();
    assert_eq!(st.signal(), Some(9));
    assert!(start.elapsed() >= Duration::from_millis(200));
    // Pid 0 (the process group) is refused; a pid that cannot exist fails with ESRCH.
    let e = proc::signal(0, Signal::SIGTERM).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(proc::signal(4_194_305, Signal::SIGTERM)
        .unwrap_err()
        .to_string()
        .starts_with("pid 4194305: kill SIGTERM: "));
}

#[test]
fn root_unprivileged_child_keeps_net_raw_and_net_admin_only() {
    require_root();
    let ns = Ns::new("priv");
    // The helper runs a copy of this binary as `nobody`: the build directory may sit
    // under one that only root can enter (a clone in /root or in a `mktemp -d`).
    let dir = std::env::temp_dir().join(format!("netlab-privs-{}", std::process::id()));
    let exe = executable_by_anyone(&dir);
    let mut cmd = helper_cmd("privs");
    cmd.env("NETLAB_HELPER_EXE", &exe)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = netns::spawn_in(&ns, &mut cmd).unwrap();
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |k: &str| proc::status_field(&text, k);
    assert_eq!(field("Uid:"), "65534 65534 65534 65534", "{text}");
    assert_eq!(field("Gid:"), "65534 65534 65534 65534", "{text}");
    for set in ["CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"] {
        assert_eq!(field(set), "0000000000003000", "{set}\n{text}");
    }
    assert_eq!(field("raw socket:"), "ok", "{text}");
    assert_eq!(field("ip_forward:"), "written", "{text}");
    assert_eq!(field("unshare:"), "refused", "{text}");
    // It ran in the namespace: the write is there, not on the host.
    assert_eq!(sysctl::get(&ns, "net.ipv4.ip_forward").unwrap(), "1");
}

#[test]
fn root_ethtool_features_read_and_set_over_netlink() {
    require_root();
    let (a, _b, _, _) = pair("eth", 10, 1500);
    let f = ethtool::features(&a, "a0").unwrap();
    // veth: TSO on by default and changeable; its list of features is long.
    assert!(f.is_on("tx-tcp-segmentation"), "{f:?}");
    assert!(f.hw.contains("tx-tcp-segmentation"), "{f:?}");
    assert!(f.hw.len() > 10 && f.active.len() > 10, "{f:?}");
    for (tso, gro) in [(false, true), (true, false)] {
        let changes = [("tx-tcp-segmentation", tso), ("rx-gro", gro)];
        ethtool::set_features(&a, "a0", &changes).unwrap();
        let g = ethtool::features(&a, "a0").unwrap();
        let now = (g.is_on("tx-tcp-segmentation"), g.is_on("rx-gro"));
        assert_eq!(now, (tso, gro), "{g:?}");
        assert_eq!(g.wanted.contains("tx-tcp-segmentation"), tso, "{g:?}");
    }
    // Unknown names and interfaces are refused, and the error names the request.
    let e = ethtool::set_features(&a, "a0", &[("no-such-feature", true)]).unwrap_err();
    assert!(
        e.to_string()
            .contains("ethtool a0 no-such-feature on: FEATURES_SET"),
        "{e}"
    );
    let e = ethtool::features(&a, "nosuch0").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(19), "{e}");
}

#[test]
fn output_within_collects_and_times_out() {
    let mut cmd = helper_cmd("echo");
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = proc::output_within(cmd.spawn().unwrap(), Duration::from_secs(20)).unwrap();
    assert!(!out.timed_out);
    assert_eq!(out.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&out.stdout).contains("to stdout"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("to stderr"));
    let mut cmd = helper_cmd("stubborn");
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    let out = proc::output_within(cmd.spawn().unwrap(), Duration::from_millis(300)).unwrap();
    assert!(out.timed_out);
    assert_eq!(
        out.status.signal(),
        Some(9),
        "SIGTERM ignored, then SIGKILL"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ready"));
    assert!(start.elapsed() < Duration::from_secs(5));
}
