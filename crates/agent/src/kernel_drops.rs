//! Datagrams the kernel dropped before the agent could read them (the socket
//! buffer was full). No counter of the agent's own sees those; Linux reports
//! them per socket in /proc/net/udp and /proc/net/udp6, which this exports at
//! scrape time as `spoor_agent_kernel_drops_total{protocol}`.
use std::net::SocketAddr;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;

/// The `drops` column of the /proc/net/udp line whose local port is `port`.
pub fn drops_for_port(table: &str, port: u16) -> Option<u64> {
    let wanted = format!("{port:04X}");
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let local_port = fields.get(1)?.rsplit(':').next()?;
        if local_port != wanted {
            return None;
        }
        fields.last()?.parse().ok()
    })
}

#[derive(Debug)]
pub struct KernelDrops {
    /// (protocol label, bound address)
    pub sockets: Vec<(&'static str, SocketAddr)>,
}

impl Collector for KernelDrops {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (v4, v6) = (
            std::fs::read_to_string("/proc/net/udp").unwrap_or_default(),
            std::fs::read_to_string("/proc/net/udp6").unwrap_or_default(),
        );
        let mut metric = encoder.encode_descriptor(
            "spoor_agent_kernel_drops",
            "UDP datagrams the kernel dropped because the socket buffer was full, by protocol",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (protocol, addr) in &self.sockets {
            let table = if addr.is_ipv4() { &v4 } else { &v6 };
            let Some(drops) = drops_for_port(table, addr.port()) else {
                continue;
            };
            let labels = [("protocol", *protocol)];
            ConstCounter::new(drops).encode(metric.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_drops_column_of_the_socket() {
        let table = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
             1234: 0100007F:1AAF 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 17\n\
             1235: 00000000:1AB0 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4243 2 0000000000000000 0\n";
        assert_eq!(drops_for_port(table, 6831), Some(17));
        assert_eq!(drops_for_port(table, 6832), Some(0));
        assert_eq!(drops_for_port(table, 5775), None);
    }
}
