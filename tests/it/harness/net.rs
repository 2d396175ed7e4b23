//! Loopback networking for tests: the one free-port helper, listeners a
//! test holds, and network conditions (a full backlog).

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

/// A port of 127.0.0.1 that was free for TCP and UDP a moment ago: bound
/// (port 0), read, released. Nothing listens there now; a server started on
/// it may find it taken meanwhile, so callers that start one retry on
/// "address in use" (BIND, sshd, Prosody do).
pub fn free_port() -> u16 {
    for _ in 0..50 {
        let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let port = tcp.local_addr().expect("local addr").port();
        if UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("no free TCP+UDP port on 127.0.0.1");
}

/// A listener the test holds on `ip`, on a port the kernel chose.
pub fn listen(ip: Ipv4Addr) -> (TcpListener, u16) {
    let listener = TcpListener::bind((ip, 0)).unwrap_or_else(|e| panic!("bind {ip}:0: {e}"));
    let port = listener.local_addr().expect("local addr").port();
    (listener, port)
}

/// A listener whose accept queue is full: further SYNs are dropped, as a
/// firewall's drop rule would, so a connect can only time out.
pub struct FullBacklog {
    pub addr: SocketAddr,
    _listener: socket2::Socket,
    _queued: Vec<TcpStream>,
}

impl FullBacklog {
    pub fn new(ip: Ipv4Addr, port: u16) -> FullBacklog {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        let addr = SocketAddr::from((ip, port));
        socket.bind(&addr.into()).expect("bind");
        socket.listen(0).expect("listen");
        let addr = socket
            .local_addr()
            .expect("local addr")
            .as_socket()
            .expect("inet");
        let mut queued = Vec::new();
        for _ in 0..8 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
                Ok(s) => queued.push(s),
                Err(_) => break,
            }
        }
        assert!(
            TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_err(),
            "the backlog of {addr} did not fill after {} connections",
            queued.len()
        );
        FullBacklog {
            addr,
            _listener: socket,
            _queued: queued,
        }
    }
}
