//! Network conditions for tests, on loopback only.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

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
