//! UDP intake: one socket per protocol, a bounded queue of datagrams, and
//! workers that decode `emitBatch` calls and hand batches to the reporter.
//! Oversized, undecodable and queue-overflowing packets are counted and
//! dropped; none of them stops the socket.
use std::net::SocketAddr;
use std::sync::Arc;

use spoor_codec::thrift::{Protocol, decode_emit_batch};
use spoor_codec::zipkin::{decode_emit_zipkin_batch, to_model};
use spoor_model::{KeyValue, Process, Span};
use spoor_server::shutdown::Shutdown;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;

use crate::metrics::{AgentMetrics, PortLabel};
use crate::reporter::Reporter;
use crate::sink::ModelBatch;

/// What a UDP port speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `Agent.emitBatch` in Thrift compact (6831).
    JaegerCompact,
    /// `Agent.emitBatch` in Thrift binary (6832).
    JaegerBinary,
    /// `Agent.emitZipkinBatch` in Thrift compact (5775).
    ZipkinCompact,
}

pub fn label(format: Format) -> PortLabel {
    PortLabel {
        protocol: match format {
            Format::JaegerCompact => "jaeger_compact",
            Format::JaegerBinary => "jaeger_binary",
            Format::ZipkinCompact => "zipkin_compact",
        },
    }
}

/// A datagram's spans, grouped by process (one forwarded batch each).
fn decode(format: Format, packet: &[u8]) -> Result<Vec<(Process, Vec<Span>)>, String> {
    let jaeger = |protocol| {
        let batch = decode_emit_batch(packet, protocol).map_err(|e| e.to_string())?;
        Ok(vec![((*batch.process).clone(), batch.spans)])
    };
    match format {
        Format::JaegerCompact => jaeger(Protocol::Compact),
        Format::JaegerBinary => jaeger(Protocol::Binary),
        Format::ZipkinCompact => {
            let (spans, errors) = decode_emit_zipkin_batch(packet).map_err(|e| e.to_string())?;
            if let Some(e) = errors.first() {
                return Err(e.clone());
            }
            let mut groups: Vec<(Process, Vec<Span>)> = Vec::new();
            for span in to_model(spans) {
                match groups.iter_mut().find(|(p, _)| *p == *span.process) {
                    Some((_, spans)) => spans.push(span),
                    None => groups.push(((*span.process).clone(), vec![span])),
                }
            }
            Ok(groups)
        }
    }
}

/// Binds a UDP socket with the requested kernel receive buffer.
pub fn bind(addr: SocketAddr, recv_buffer: usize) -> anyhow::Result<UdpSocket> {
    use anyhow::Context;
    let domain = if addr.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if recv_buffer > 0 {
        socket
            .set_recv_buffer_size(recv_buffer)
            .context("while setting the UDP receive buffer")?;
    }
    socket.set_nonblocking(true)?;
    socket
        .bind(&addr.into())
        .with_context(|| format!("while binding UDP {addr}"))?;
    Ok(UdpSocket::from_std(socket.into())?)
}

pub struct Port {
    pub format: Format,
    pub socket: UdpSocket,
}

pub struct Settings {
    pub max_packet_size: usize,
    pub queue_size: usize,
    pub workers: usize,
    pub agent_tags: Vec<KeyValue>,
}

/// Receives on `port` until shutdown, decoding with `settings.workers` tasks.
pub fn spawn(
    tasks: &mut JoinSet<()>,
    port: Port,
    settings: &Settings,
    reporter: Reporter,
    metrics: Arc<AgentMetrics>,
    shutdown: Shutdown,
) {
    let label = label(port.format);
    let (tx, rx) = async_channel::bounded::<Vec<u8>>(settings.queue_size);
    let max = settings.max_packet_size;
    {
        let (metrics, label) = (Arc::clone(&metrics), label.clone());
        let socket = port.socket;
        tasks.spawn(async move {
            // one byte more than allowed, so an oversized datagram is seen as such
            let mut buf = vec![0u8; max + 1];
            let stop = shutdown.wait();
            tokio::pin!(stop);
            loop {
                let n = tokio::select! {
                    _ = &mut stop => return,
                    r = socket.recv(&mut buf) => match r {
                        Ok(n) => n,
                        Err(e) => {
                            tracing::warn!(error = %e, "UDP receive failed");
                            continue;
                        }
                    },
                };
                metrics.packets_received.get_or_create(&label).inc();
                if n > max {
                    metrics.packets_too_large.get_or_create(&label).inc();
                    continue;
                }
                if tx.try_send(buf[..n].to_vec()).is_err() {
                    metrics.packets_dropped.get_or_create(&label).inc();
                } else {
                    metrics.packet_queue_length.get_or_create(&label).inc();
                }
            }
        });
    }
    for _ in 0..settings.workers {
        let (rx, reporter, metrics, label) = (
            rx.clone(),
            reporter.clone(),
            Arc::clone(&metrics),
            label.clone(),
        );
        let agent_tags = settings.agent_tags.clone();
        let format = port.format;
        tasks.spawn(async move {
            loop {
                let Ok(packet) = rx.recv().await else {
                    return;
                };
                metrics.packet_queue_length.get_or_create(&label).dec();
                match decode(format, &packet) {
                    Ok(groups) => {
                        for (mut process, mut spans) in groups {
                            metrics
                                .spans_received
                                .get_or_create(&label)
                                .inc_by(spans.len() as u64);
                            process.tags.extend(agent_tags.iter().cloned());
                            let process = Arc::new(process);
                            for span in &mut spans {
                                span.process = Arc::clone(&process);
                            }
                            reporter.submit(ModelBatch { process, spans });
                        }
                    }
                    Err(e) => {
                        metrics.decode_errors.get_or_create(&label).inc();
                        tracing::debug!(error = %e, "undecodable packet dropped");
                    }
                }
            }
        });
    }
}
