#!/bin/sh
# PID 1 of the interop guest (busybox sh).
#
# Two modes:
# - one scenario per boot: the kernel command line carries the scenario as macsec.KEY=VALUE
#   words; the guest runs it and powers off.
# - a session (kernel command line macsec.session=1): after boot the guest waits for lines
#   "scenario KEY=VALUE ..." on its console (QEMU's stdin; same keys as on the command line,
#   with or without the macsec. prefix), runs each one with a fresh macsec0, and powers off on
#   the line "poweroff" (or after macsec.session_idle seconds without a line).
#
# A scenario sets up eth0 + macsec0 with Debian's /sbin/ip, pings the peer, waits for the peer,
# prints its counters between markers and a result line. Markers (each at column 0):
#   === SESSION READY t=... ===             (session) booted, waiting for a scenario line
#   === MACSEC READY ... ===                macsec0 configured
#   === START go|timeout ===                (macsec.ctl=stdin) the host said "go"
#   === PEER REACHABLE t=... ===            first reply through macsec0
#   === PINGS DONE tx=N rx=M ===            own ping phase finished
#   === NEG ... ===                         guest-side negative actions (see NEGATIVE below)
#   === TX DONE t=... ===                   this guest sends nothing more on its own
#   === RELEASED how=... ===                the wait for the peer ended (see WAIT below)
#   === COUNTERS BEGIN === ... === COUNTERS END ===        `ip -s macsec show macsec0`
#   === COUNTERS JSON BEGIN === ... === COUNTERS JSON END ===  `ip -j -s macsec show macsec0`
#   MACSEC-RESULT key=value ...             one machine-readable line, always printed
#
# Parameters (defaults in brackets; see tests/interop/README.md for the full table):
#   name role cipher[gcm-aes-128] encrypt[on] send_sci[on] end_station[off] scb[off]
#   validate[strict] replay[on] window[0] port[1] peer_port[1] peer_mac an[0] rxan[=an]
#   txkey rxkey txkeyid[01] rxkeyid[02] txpn[1] rxpn[1] txssci rxssci txsalt rxsalt (XPN)
#   mtu[1500] ip[192.0.2.1] peer_ip[192.0.2.2] prefix[24] count[5] size[56] interval[0.2]
#   df[off] reach_timeout[60] hold[30] ctl[none|stdin] neg[] expect_echo[=count]
#   wait_late[0] wait_notvalid[0] debug[0]

echo   # end the firmware's last console line: every marker below starts a line
export PATH=/sbin:/usr/sbin:/bin:/usr/bin
IP=/sbin/ip          # Debian's ip; busybox's own applet has no macsec support
PING=/bin/ping       # iputils (busybox ping has no -M do)

/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
/bin/busybox --install -s 2>/dev/null
mkdir -p /tmp /run
mount -t tmpfs tmpfs /tmp
stty -echo 2>/dev/null   # the host driver types lines on the console

now() { cut -d' ' -f1 /proc/uptime; }
up_s() { cut -d. -f1 /proc/uptime; }
say() { echo "[guest $(now)] $*"; }

# ---------------------------------------------------------------- boot: kernel and link
echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6
echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6
# Load the module closure in dependency order (computed at build time), without modprobe's
# command-line option parsing (the macsec.* words are ours, not module options).
while read -r m; do
    insmod "/lib/modules/$(uname -r)/$m" 2>/dev/null
done < /etc/interop/modules.load
n=0
while [ ! -d /sys/class/net/eth0 ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
BOOT_ERR=""
[ -d /sys/class/net/eth0 ] || BOOT_ERR="no eth0"
echo 1 > /proc/sys/net/ipv6/conf/eth0/disable_ipv6 2>/dev/null
$IP link set lo up
$IP link set eth0 up 2>/dev/null

# ---------------------------------------------------------------- one scenario
# Runs in a subshell: a failure ends the scenario (and its variables), not the guest.
run_scenario() (
RESULT_STATUS=fail
RESULT_REASON="scenario did not finish"
RES_EXTRA=""
finish() {
    echo "MACSEC-RESULT name=${P_name:-?} role=${P_role:-?} status=$RESULT_STATUS reason=$(echo "$RESULT_REASON" | tr ' ' '_') t=$(now)$RES_EXTRA"
    exit 0
}
dump_counters() {
    if [ -d /sys/class/net/macsec0 ]; then
        echo "=== COUNTERS BEGIN ==="
        $IP -s macsec show macsec0
        echo "=== COUNTERS END ==="
        echo "=== COUNTERS JSON BEGIN ==="
        $IP -j -s macsec show macsec0
        echo
        echo "=== COUNTERS JSON END ==="
    fi
}
fail() { RESULT_REASON="$*"; say "FAIL: $*"; dump_counters; finish; }
run() { [ "$P_debug" = 1 ] && say "+ $*"; "$@" || fail "command failed: $*"; }

# parameters: KEY=VALUE words (macsec. prefix optional) become P_KEY ('-' and '.' as '_')
for w in "$@"; do
    case "$w" in
        *=*)
            k=${w%%=*}; k=${k#macsec.}; v=${w#*=}
            case "$k" in *.*) continue ;; esac
            k=$(echo "$k" | tr -- '-' '_')
            eval "P_$k=\$v"
            ;;
    esac
done

: "${P_name:=unnamed}"
: "${P_role:=guest}"
: "${P_cipher:=gcm-aes-128}"
: "${P_encrypt:=on}"
: "${P_send_sci:=on}"
: "${P_end_station:=off}"
: "${P_scb:=off}"
: "${P_validate:=strict}"
: "${P_replay:=on}"
: "${P_window:=0}"
: "${P_port:=1}"
: "${P_peer_port:=1}"
: "${P_an:=0}"
: "${P_rxan:=$P_an}"
: "${P_txpn:=1}"
: "${P_rxpn:=1}"
: "${P_txkeyid:=01}"
: "${P_rxkeyid:=02}"
: "${P_mtu:=1500}"
: "${P_ip:=192.0.2.1}"
: "${P_peer_ip:=192.0.2.2}"
: "${P_prefix:=24}"
: "${P_count:=5}"
: "${P_size:=56}"
: "${P_interval:=0.2}"
: "${P_df:=off}"
: "${P_reach_timeout:=60}"
: "${P_expect_echo:=$P_count}"
: "${P_wait_late:=0}"
: "${P_wait_notvalid:=0}"
: "${P_hold:=30}"
: "${P_ctl:=none}"
: "${P_neg:=}"
: "${P_debug:=0}"
: "${P_vlan:=0}"
# The SecY's lower device: eth0, or with macsec.vlan=N the VLAN device eth0.N (the kernel's
# macsec on a VLAN sub-interface: the 802.1Q tag stays in clear before the SecTAG, and
# wpa_supplicant's MKPDUs carry it too).
LOWER=eth0
[ "$P_vlan" != 0 ] && LOWER="eth0.$P_vlan"

# MKA: start wpa_supplicant (config in /tmp/wpa.conf) in the background.
start_wpa() {
    /sbin/wpa_supplicant -D macsec_linux -i "$LOWER" -c /tmp/wpa.conf -t >> /tmp/wpa.log 2>&1 &
    echo $! > /run/wpa.pid   # reset_link stops it after the scenario
}
# MKA: poll every 0.1 s for at most 60 s until macsec0 has an active TX SA and RX SA.
wait_mka_sas() {
    dl=$(( $(up_s) + 60 ))
    while [ "$(up_s)" -lt "$dl" ]; do
        if [ -d /sys/class/net/macsec0 ] && $IP macsec show macsec0 2>/dev/null | awk '
            /TXSC:/ {tx=1; rx=0; next} /RXSC:/ {rx=1; tx=0; next}
            /state on/ { if (tx) t=1; if (rx) r=1 }
            END { exit !(t && r) }'; then return 0; fi
        sleep 0.1
    done
    return 1
}
# Address macsec0 and bring it up.
macsec_ip_up() {
    echo 1 > /proc/sys/net/ipv6/conf/macsec0/disable_ipv6 2>/dev/null
    # No ARP probes in the middle of a scenario: a neighbour entry used for replies would
    # otherwise be re-probed ~5 s later, adding frames that race with the counter dumps.
    echo 600 > /proc/sys/net/ipv4/neigh/macsec0/delay_first_probe_time
    echo 600000 > /proc/sys/net/ipv4/neigh/macsec0/base_reachable_time_ms
    run $IP addr add "$P_ip/$P_prefix" dev macsec0
    run $IP link set macsec0 up
}
# Icmp InEchos (echo requests received), found by its header name: the column moved when
# kernels added InCsumErrors.
in_echos() {
    awk '/^Icmp:/ { if (!h) { for (i = 2; i <= NF; i++) if ($i == "InEchos") c = i; h = 1; next }
                    print $c; exit }' /proc/net/snmp
}

say "scenario $P_name role=$P_role cipher=$P_cipher encrypt=$P_encrypt send_sci=$P_send_sci an=$P_an window=$P_window mtu=$P_mtu"
[ -z "$BOOT_ERR" ] || fail "$BOOT_ERR"
: "${P_mka:=off}"
: "${P_mka_priority:=16}"
if [ "$P_mka" != on ]; then
    [ -n "$P_txkey" ] || fail "macsec.txkey missing"
    [ -n "$P_rxkey" ] || fail "macsec.rxkey missing"
    [ -n "$P_peer_mac" ] || fail "macsec.peer_mac missing"
else
    [ -n "$P_mka_cak" ] && [ -n "$P_mka_ckn" ] || fail "macsec.mka_cak / macsec.mka_ckn missing"
fi

case "$P_cipher" in
    *xpn*) PNKW=xpn
           for v in txssci rxssci txsalt rxsalt; do eval "[ -n \"\$P_$v\" ]" || fail "macsec.$v missing (XPN)"; done
           TXXPN="ssci 0x$P_txssci salt $P_txsalt"; RXXPN="ssci 0x$P_rxssci salt $P_rxsalt" ;;
    *) PNKW=pn; TXXPN=""; RXXPN="" ;;
esac

run $IP link set eth0 mtu "$P_mtu"
if [ "$LOWER" != eth0 ]; then
    run $IP link add link eth0 name "$LOWER" type vlan id "$P_vlan"
    echo 1 > "/proc/sys/net/ipv6/conf/$LOWER/disable_ipv6" 2>/dev/null
    run $IP link set "$LOWER" up
fi
if [ "$P_mka" = on ]; then
# ---------------------------------------------------------------- MKA: wpa_supplicant makes the SecY
# wpa_supplicant 2.10 (-D macsec_linux) creates macsec0 on eth0 and installs the SAs it
# negotiates (GCM-AES-128 only); the scenario waits until a TX SA and an RX SA are active.
    mkdir -p /run/wpa_supplicant
    {
        echo "ctrl_interface=/run/wpa_supplicant"
        echo "eapol_version=3"
        echo "ap_scan=0"
        echo "network={"
        echo "	key_mgmt=NONE"
        echo "	eapol_flags=0"
        echo "	macsec_policy=1"
        echo "	macsec_integ_only=$([ "$P_encrypt" = on ] && echo 0 || echo 1)"
        echo "	macsec_replay_protect=$([ "$P_replay" = on ] && echo 1 || echo 0)"
        echo "	macsec_replay_window=$P_window"
        echo "	macsec_port=$P_port"
        echo "	mka_cak=$P_mka_cak"
        echo "	mka_ckn=$P_mka_ckn"
        echo "	mka_priority=$P_mka_priority"
        echo "}"
    } > /tmp/wpa.conf
    T0=$(now)
    echo "=== MKA START t=$T0 ==="
    : > /tmp/wpa.log
    start_wpa
    if ! wait_mka_sas; then
        echo "=== WPA LOG ==="; tail -n 40 /tmp/wpa.log
        fail "MKA: no active TX and RX SA within 60 s"
    fi
    T1=$(now)
    echo "=== MKA UP t=$T1 secs=$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.2f", b - a }') ==="
    # wpa_supplicant's own view (KaY status: key server, priorities, participants)
    /sbin/wpa_cli -p /run/wpa_supplicant -i "$LOWER" status 2>&1 | sed 's/^/wpa: /'
else
ES=""
[ "$P_end_station" = on ] && ES="end_station on"
[ "$P_scb" = on ] && ES="$ES scb on"
REPLAY="replay $P_replay"
[ "$P_replay" = on ] && REPLAY="replay on window $P_window"
run $IP link add link "$LOWER" macsec0 type macsec port "$P_port" cipher "$P_cipher" icvlen 16 \
    encrypt "$P_encrypt" send_sci "$P_send_sci" $ES protect on $REPLAY validate "$P_validate" \
    encodingsa "$P_an"
run $IP macsec add macsec0 tx sa "$P_an" $PNKW "$P_txpn" $TXXPN on key "$P_txkeyid" "$P_txkey"
run $IP macsec add macsec0 rx port "$P_peer_port" address "$P_peer_mac" on
run $IP macsec add macsec0 rx port "$P_peer_port" address "$P_peer_mac" sa "$P_rxan" $PNKW "$P_rxpn" \
    $RXXPN on key "$P_rxkeyid" "$P_rxkey"
fi
macsec_ip_up
MYMAC=$(cat /sys/class/net/eth0/address)
ECHO_START=$(in_echos)
echo "=== MACSEC READY mac=$MYMAC mtu=$(cat /sys/class/net/macsec0/mtu) t=$(now) ==="
[ "$P_debug" = 1 ] && $IP -d link show macsec0 && $IP macsec show macsec0

# ---------------------------------------------------------------- start gate
# macsec.ctl=stdin: wait for the line "go" on the console, which the host driver sends once the
# peer is configured too, so that no frame is sent before both sides can count it.
# wait_line WORD SECONDS: read console lines until one contains WORD. One long `read -t` per
# line: a short timeout expiring in the middle of a line would lose the start of that line.
wait_line() {
    dl=$(( $(up_s) + $2 ))
    while [ "$(up_s)" -lt "$dl" ]; do
        left=$(( dl - $(up_s) ))
        [ "$left" -ge 1 ] || left=1
        if read -t "$left" line; then
            case "$line" in *"$1"*) return 0 ;; esac
        fi
    done
    return 1
}
if [ "$P_ctl" = stdin ]; then
    gate=timeout
    wait_line go "$P_reach_timeout" && gate=go
    echo "=== START $gate t=$(now) ==="
    [ $gate = go ] || fail "no go from the host within ${P_reach_timeout}s"
fi

# ---------------------------------------------------------------- reachability
deadline=$(( $(up_s) + P_reach_timeout ))
tries=0
reached=0
while [ "$(up_s)" -lt "$deadline" ] && [ $tries -lt 1000 ]; do
    tries=$((tries + 1))
    if $PING -c 1 -W 1 -q "$P_peer_ip" >/dev/null 2>&1; then reached=1; break; fi
    sleep 0.2
done
[ $reached = 1 ] || fail "peer $P_peer_ip not reachable through macsec0 within ${P_reach_timeout}s"
echo "=== PEER REACHABLE t=$(now) after=$tries ==="

# ---------------------------------------------------------------- own pings
DF=""
[ "$P_df" = on ] && DF="-M do"
$PING -c "$P_count" -i "$P_interval" -s "$P_size" $DF -W 2 -q "$P_peer_ip" > /tmp/ping.out 2>&1
cat /tmp/ping.out
PTX=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' /tmp/ping.out)
PRX=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' /tmp/ping.out)
echo "=== PINGS DONE tx=${PTX:-0} rx=${PRX:-0} t=$(now) ==="
RES_EXTRA="$RES_EXTRA pings_tx=${PTX:-0} pings_rx=${PRX:-0}"

# ---------------------------------------------------------------- TCP bulk transfer
# macsec.tcp=BYTES: a TCP exchange with the peer, BYTES each way, random data, MD5 compared by
# the driver. tcp_role=server (default): listen on 5001 (store what arrives) and 5002 (send
# BYTES, close); the host side connects. tcp_role=client: connect to the peer's 5001 (send)
# and 5002 (receive), retrying while it does not listen yet.
: "${P_tcp:=0}"
: "${P_tcp_role:=server}"
if [ "$P_tcp" -gt 0 ]; then
    rm -f /tmp/rx
    head -c "$P_tcp" /dev/urandom > /tmp/tx
    printf '#!/bin/sh\ncat > /tmp/rx\n' > /tmp/recv.sh
    printf '#!/bin/sh\ncat /tmp/tx\n' > /tmp/send.sh
    chmod +x /tmp/recv.sh /tmp/send.sh
    TXMD5=$(md5sum < /tmp/tx | cut -d' ' -f1)
    T0=$(now)
    if [ "$P_tcp_role" = client ]; then
        for port in 5001 5002; do
            sc=/tmp/send.sh; [ $port = 5002 ] && sc=/tmp/recv.sh
            n=0
            while [ $n -lt 50 ]; do
                nc -w 2 "$P_peer_ip" $port -e $sc 2>/dev/null && break
                n=$((n + 1)); sleep 0.2
            done
        done
    else
        nc -l -p 5001 -e /tmp/recv.sh & R=$!
        nc -l -p 5002 -e /tmp/send.sh & S=$!
        echo "=== TCP LISTENING t=$(now) ==="
        dl=$(( $(up_s) + P_hold ))
        while { [ -d /proc/$R ] || [ -d /proc/$S ]; } && [ "$(up_s)" -lt "$dl" ]; do sleep 0.1; done
        kill $R $S 2>/dev/null
    fi
    RXB=$(wc -c < /tmp/rx 2>/dev/null); RXMD5=$(md5sum < /tmp/rx 2>/dev/null | cut -d' ' -f1)
    echo "=== TCP DONE sent_bytes=$P_tcp sent_md5=$TXMD5 recv_bytes=${RXB:-0} recv_md5=${RXMD5:-none} secs=$(awk -v a="$T0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }') ==="
fi

# ---------------------------------------------------------------- NEGATIVE (guest side)
# macsec.neg=rewind,badkey: make this kernel send frames the peer must drop:
#   rewind  - set the TX SA's next PN back by one and send one ping: the peer counts InPktsLate
#   badkey  - re-install the TX SA with one key bit flipped, PN ahead, send one ping: the peer
#             counts InPktsNotValid; then restore the right key further ahead and check that
#             pings pass again (recovery).
txpn_now() {
    # next PN of our TX SA, from `ip macsec show` ("0: PN 123, state on, ..." under TXSC)
    $IP macsec show macsec0 | awk -v an="$P_an" '
        /TXSC:/ {tx=1; next} /RXSC:/ {tx=0}
        tx && $1 == an":" && ($2 == "PN" || $2 == "XPN") { sub(",.*", "", $3); print $3; exit }'
}
NEG_OK=1
for action in $(echo "$P_neg" | tr ',' ' '); do
    case "$action" in
        rewind)
            pn=$(txpn_now)
            [ -n "$pn" ] || { NEG_OK=0; say "cannot read TX PN"; continue; }
            back=$((pn - 1))
            run $IP macsec set macsec0 tx sa "$P_an" $PNKW "$back"
            $PING -c 1 -W 1 -q "$P_peer_ip" >/dev/null 2>&1 && { NEG_OK=0; say "rewound ping answered"; }
            echo "=== NEG rewind pn=$pn sent_pn=$back t=$(now) ==="
            ;;
        badkey)
            pn=$(txpn_now)
            [ -n "$pn" ] || { NEG_OK=0; say "cannot read TX PN"; continue; }
            # flip the lowest bit of the key's last hex digit
            last=${P_txkey#${P_txkey%?}}
            d=$(( 0x$last ^ 1 ))
            bad="${P_txkey%?}$(printf %X "$d")"
            run $IP macsec set macsec0 tx sa "$P_an" off
            run $IP macsec del macsec0 tx sa "$P_an"
            run $IP macsec add macsec0 tx sa "$P_an" $PNKW $((pn + 100)) $TXXPN on key "$P_txkeyid" "$bad"
            $PING -c 1 -W 1 -q "$P_peer_ip" >/dev/null 2>&1 && { NEG_OK=0; say "bad-key ping answered"; }
            run $IP macsec set macsec0 tx sa "$P_an" off
            run $IP macsec del macsec0 tx sa "$P_an"
            run $IP macsec add macsec0 tx sa "$P_an" $PNKW $((pn + 200)) $TXXPN on key "$P_txkeyid" "$P_txkey"
            if $PING -c 2 -i 0.2 -W 2 -q "$P_peer_ip" >/dev/null 2>&1; then rec=1; else rec=0; NEG_OK=0; fi
            echo "=== NEG badkey pn=$((pn + 100)) recovered=$rec t=$(now) ==="
            ;;
        wpa-restart)
            # MKA: wpa_supplicant stops (and deletes macsec0) and starts again as a new
            # participant, as after a restart of the service; the host side keeps running.
            # First let the peer's echo requests of the main phase all arrive.
            dl=$(( $(up_s) + 20 ))
            while [ $(( $(in_echos) - ECHO_START )) -lt "$P_expect_echo" ] && [ "$(up_s)" -lt "$dl" ]; do
                sleep 0.1
            done
            sleep 0.5
            kill "$(cat /run/wpa.pid)" 2>/dev/null
            n=0; while [ -d /proc/"$(cat /run/wpa.pid)" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
            $IP link del macsec0 2>/dev/null
            T0=$(now)
            start_wpa
            if wait_mka_sas; then
                T1=$(now)
                macsec_ip_up
                # The first answered ping after the restart, then 10 more that must all pass.
                reach=0; n=0
                while [ $n -lt 60 ]; do
                    n=$((n + 1))
                    if $PING -c 1 -W 1 -q "$P_peer_ip" >/dev/null 2>&1; then reach=1; break; fi
                done
                T2=$(now)
                $PING -c 10 -i 0.2 -W 2 -q "$P_peer_ip" > /tmp/ping2.out 2>&1
                rx2=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' /tmp/ping2.out)
                [ "$reach" = 1 ] && [ "${rx2:-0}" = 10 ] || NEG_OK=0
                echo "=== NEG wpa-restart secured_s=$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.2f", b - a }') first_reply_s=$(awk -v a="$T0" -v b="$T2" 'BEGIN { printf "%.2f", b - a }') pings_rx=${rx2:-0} t=$(now) ==="
            else
                NEG_OK=0
                echo "=== WPA LOG ==="; tail -n 40 /tmp/wpa.log
                echo "=== NEG wpa-restart secured_s=none t=$(now) ==="
            fi
            ;;
        "") ;;
        *) say "unknown macsec.neg action $action"; NEG_OK=0 ;;
    esac
done
[ -n "$P_neg" ] && RES_EXTRA="$RES_EXTRA neg_ok=$NEG_OK"
echo "=== TX DONE t=$(now) ==="

# ---------------------------------------------------------------- WAIT for the peer
# macsec.ctl=stdin: the host driver writes the line "release" to the console (QEMU's stdin) once
#   both sides are done sending (and any injected frames are on the wire); bounded by macsec.hold.
# macsec.ctl=none (manual runs): wait until the peer's echo requests arrived (Icmp InEchos >=
#   macsec.expect_echo) and then stopped for 1.5 s, and until InPktsLate / InPktsNotValid reached
#   macsec.wait_late / macsec.wait_notvalid; bounded by macsec.hold.
rx_counter() {
    # value of an RXSC counter (sum over RX SCs) from `ip -s macsec show`
    $IP -s macsec show macsec0 | awk -v want="$1" '
        /RXSC:/ {rx=1; next}
        rx && $1 == "stats:" { n=split($0, h, " "); getline; split($0, v, " ");
                               for (i = 2; i <= n; i++) if (h[i] == want) s += v[i-1]; rx=0 }
        END { print s + 0 }'
}
ECHO0=$(in_echos)
deadline=$(( $(up_s) + P_hold ))
how=timeout
if [ "$P_ctl" = stdin ]; then
    wait_line release "$P_hold" && how=release
else
    last_e=-1; quiet=0
    while [ "$(up_s)" -lt "$deadline" ]; do
        e=$(in_echos); l=$(rx_counter InPktsLate); nv=$(rx_counter InPktsNotValid)
        if [ "$e" = "$last_e" ]; then quiet=$((quiet + 1)); else quiet=0; last_e=$e; fi
        if [ "${e:-0}" -ge "$P_expect_echo" ] && [ $quiet -ge 6 ] && [ "$l" -ge "$P_wait_late" ] \
            && [ "$nv" -ge "$P_wait_notvalid" ]; then
            how=counters; break
        fi
        sleep 0.25
    done
    sleep 0.5   # let the replies to the last echo requests leave
fi
echo "=== RELEASED how=$how t=$(now) ==="
RES_EXTRA="$RES_EXTRA released=$how"
dump_counters
RESULT_STATUS=ok
RESULT_REASON=done
finish
)

# Between scenarios of a session: drop the SecY and what the last scenario left behind.
reset_link() {
    if [ -f /run/wpa.pid ]; then
        kill "$(cat /run/wpa.pid)" 2>/dev/null
        n=0; while [ -d /proc/"$(cat /run/wpa.pid)" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
        rm -f /run/wpa.pid
    fi
    $IP link del macsec0 2>/dev/null
    for v in /sys/class/net/eth0.*; do [ -e "$v" ] && $IP link del "${v##*/}" 2>/dev/null; done
    $IP neigh flush dev eth0 2>/dev/null
    $IP link set eth0 mtu 1500 2>/dev/null
}

# ---------------------------------------------------------------- main
SESSION=0
IDLE=900
for w in $(cat /proc/cmdline); do
    case "$w" in
        macsec.session=1) SESSION=1 ;;
        macsec.session_idle=*) IDLE=${w#*=} ;;
    esac
done

# the Debian tools in the image run (their libraries resolved): one line each
echo "=== TOOLS ip=[$($IP -V 2>&1)] tcpdump=[$(tcpdump --version 2>&1 | head -n 1)] wpa_supplicant=[$(/sbin/wpa_supplicant -v 2>&1 | head -n 1)] kernel=[$(uname -r)] ==="

if [ $SESSION = 1 ]; then
    echo "=== SESSION READY t=$(now) ${BOOT_ERR:+error=$(echo "$BOOT_ERR" | tr ' ' '_')} ==="
    n=0
    while [ $n -lt 1000 ]; do
        n=$((n + 1))
        line=""
        read -t "$IDLE" line || { say "no line for ${IDLE}s: powering off"; break; }
        case "$line" in
            scenario\ *)
                # shellcheck disable=SC2086 - word splitting wanted
                run_scenario ${line#scenario }
                reset_link
                echo "=== SCENARIO END t=$(now) ==="
                ;;
            poweroff*) break ;;
            "") ;;
            *) say "ignored console line: $line" ;;
        esac
    done
else
    # shellcheck disable=SC2046
    run_scenario $(for w in $(cat /proc/cmdline); do case "$w" in macsec.*=*) echo "$w" ;; esac; done)
fi
sync
poweroff -f
sleep 5
echo o > /proc/sysrq-trigger
