//! A TCP proxy in front of a real DNS server that acts at the moment an
//! RFC 2136 UPDATE passes through: make a concurrent change first, hold the
//! update, or go down. It lets the fault matrix hit the exact instant
//! between edgefail's check and its apply without hooks in edgefail. Only
//! updates that add records count: the no-op update that proves the TSIG
//! key at check time passes through untouched and uncounted.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::net::listen;

/// What to do with the next UPDATE.
pub enum OnUpdate {
    /// Forward it.
    Pass,
    /// Run this first (once), then forward: a concurrent change.
    ChangeFirst(Box<dyn FnOnce() + Send>),
    /// Forward it after this pause (the update stays atomic).
    Hold(Duration),
    /// Close the connection without forwarding, and refuse everything until
    /// `up()`: the primary went down mid-step.
    GoDown,
}

struct Shared {
    upstream: SocketAddr,
    on_update: Mutex<OnUpdate>,
    down: AtomicBool,
    /// UPDATEs seen, and forwarded.
    seen: AtomicUsize,
    forwarded: AtomicUsize,
}

pub struct DnsProxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl DnsProxy {
    pub fn start(upstream: SocketAddr) -> DnsProxy {
        // Queries may come over UDP too (the partner's-eye lookup): relay
        // them on the same port number. Updates only ever come over TCP.
        let (listener, udp) = loop {
            let (listener, port) = listen(Ipv4Addr::LOCALHOST);
            if let Ok(udp) = UdpSocket::bind(("127.0.0.1", port)) {
                break (listener, udp);
            }
        };
        let addr = listener.local_addr().expect("proxy address");
        std::thread::spawn(move || relay_udp(&udp, upstream));
        let shared = Arc::new(Shared {
            upstream,
            on_update: Mutex::new(OnUpdate::Pass),
            down: AtomicBool::new(false),
            seen: AtomicUsize::new(0),
            forwarded: AtomicUsize::new(0),
        });
        let s = shared.clone();
        // The thread lives as long as the test process; it only ever talks
        // to 127.0.0.1.
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                if s.down.load(Ordering::SeqCst) {
                    let _ = conn.shutdown(Shutdown::Both);
                    continue;
                }
                let s = s.clone();
                std::thread::spawn(move || serve(conn, &s));
            }
        });
        DnsProxy { addr, shared }
    }

    pub fn on_next_update(&self, action: OnUpdate) {
        *self.shared.on_update.lock().unwrap() = action;
    }

    pub fn up(&self) {
        self.shared.down.store(false, Ordering::SeqCst);
        *self.shared.on_update.lock().unwrap() = OnUpdate::Pass;
    }

    pub fn updates_seen(&self) -> usize {
        self.shared.seen.load(Ordering::SeqCst)
    }

    pub fn updates_forwarded(&self) -> usize {
        self.shared.forwarded.load(Ordering::SeqCst)
    }
}

fn read_message(conn: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    conn.read_exact(&mut len).ok()?;
    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
    conn.read_exact(&mut msg).ok()?;
    Some(msg)
}

fn write_message(conn: &mut TcpStream, msg: &[u8]) -> Option<()> {
    let len = u16::try_from(msg.len()).ok()?.to_be_bytes();
    conn.write_all(&len).ok()?;
    conn.write_all(msg).ok()
}

fn serve(mut client: TcpStream, s: &Shared) {
    while let Some(msg) = read_message(&mut client) {
        let is_update = msg.len() > 3 && (msg[2] >> 3) & 0x0f == 5;
        if is_update && adds_records(&msg) {
            s.seen.fetch_add(1, Ordering::SeqCst);
            let action = std::mem::replace(&mut *s.on_update.lock().unwrap(), OnUpdate::Pass);
            match action {
                OnUpdate::Pass => {}
                OnUpdate::ChangeFirst(change) => change(),
                OnUpdate::Hold(pause) => std::thread::sleep(pause),
                OnUpdate::GoDown => {
                    s.down.store(true, Ordering::SeqCst);
                    let _ = client.shutdown(Shutdown::Both);
                    return;
                }
            }
            s.forwarded.fetch_add(1, Ordering::SeqCst);
        }
        let Ok(mut upstream) = TcpStream::connect(s.upstream) else {
            return;
        };
        let _ = upstream.set_read_timeout(Some(Duration::from_secs(10)));
        let answer = write_message(&mut upstream, &msg).and_then(|()| read_message(&mut upstream));
        match answer {
            Some(answer) if write_message(&mut client, &answer).is_some() => {}
            _ => return,
        }
    }
}

/// Does this UPDATE add a record (as a failover's own updates do)?
fn adds_records(msg: &[u8]) -> bool {
    use hickory_proto::op::Message;
    use hickory_proto::rr::DNSClass;
    Message::from_vec(msg)
        .map(|m| m.authorities.iter().any(|r| r.dns_class == DNSClass::IN))
        .unwrap_or(true)
}

fn relay_udp(socket: &UdpSocket, upstream: SocketAddr) {
    let mut buf = [0u8; 4096];
    while let Ok((n, client)) = socket.recv_from(&mut buf) {
        let Ok(out) = UdpSocket::bind("127.0.0.1:0") else {
            continue;
        };
        let _ = out.set_read_timeout(Some(Duration::from_secs(5)));
        let mut answer = [0u8; 4096];
        if out.send_to(&buf[..n], upstream).is_ok()
            && let Ok(m) = out.recv(&mut answer)
        {
            let _ = socket.send_to(&answer[..m], client);
        }
    }
}
