//! What the unit tests of the engine and the steps run on: one small
//! topology (EdgePool1 in Site1 fails, EdgePool2 in Site2 with two Edge
//! servers takes over) and quick options.
#![cfg(test)]

use std::time::Duration;

use super::RunOptions;
use crate::topology::Topology;

pub const TOPOLOGY: &str = "version: 1
xmpp: { domain: contoso.com, a_record: xmpp.contoso.com }
dns: { zone: contoso.com, mode: manual, authoritative: [127.0.0.1] }
management: { transport: { type: local } }
sites:
  - name: Site1
    pools:
      - name: EdgePool1
        fqdn: edgepool1.contoso.com
        version: lync2013
        srv_priority: 10
        servers: [{ fqdn: edge1.contoso.com, external_ipv4: 203.0.113.10, transport: { type: local } }]
  - name: Site2
    pools:
      - name: EdgePool2
        fqdn: edgepool2.contoso.com
        version: lync2013
        srv_priority: 20
        servers:
          - { fqdn: edge2a.contoso.com, external_ipv4: 203.0.113.20, transport: { type: local } }
          - { fqdn: edge2b.contoso.com, external_ipv4: 203.0.113.21, transport: { type: local } }
";

pub fn topology() -> Topology {
    let (topology, report) = crate::topology::parse(std::path::Path::new("t.yaml"), TOPOLOGY);
    topology.unwrap_or_else(|| panic!("{report}"))
}

/// Short deadlines: nothing here waits on a real machine.
pub fn opts() -> RunOptions {
    RunOptions {
        parallel: 2,
        graceful: false,
        command_timeout: Duration::from_secs(2),
        verify_timeout: Duration::from_secs(2),
        poll: Duration::from_millis(1),
    }
}
