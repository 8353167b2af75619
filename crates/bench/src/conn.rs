//! A raw Gearman connection for the load generator: requests are appended
//! to a write buffer and sent with one syscall per flush, responses are
//! framed by the proto crate's decoder. No client library sits in between,
//! so the generator's own cost per packet stays small.

use std::time::Duration;

use anyhow::{bail, Context};
use bytes::BytesMut;
use sprocket_client::{ServerAddr, ServerStream, TlsConfig};
use sprocket_proto::{Decoder, Frame, Magic, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long one connection (and its TLS handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the load goes: the server's address and, for a TLS port, the
/// settings every connection's handshake uses.
#[derive(Debug, Clone)]
pub struct Target {
    /// The server under test.
    pub addr: ServerAddr,
    /// TLS settings (the server's certificate is verified), or plain TCP.
    pub tls: Option<TlsConfig>,
}

impl Target {
    /// The target `--server` and the `--ssl*` flags name.
    pub fn from_args(args: &crate::BenchArgs) -> anyhow::Result<Target> {
        let addr: ServerAddr = args.server.parse().map_err(|e| anyhow::anyhow!("--server {}: {e}", args.server))?;
        let tls = if args.ssl || args.ssl_ca.is_some() || args.ssl_cert.is_some() {
            let mut builder = TlsConfig::builder();
            if let Some(ca) = &args.ssl_ca {
                builder = builder.ca_file(ca);
            }
            match (&args.ssl_cert, &args.ssl_key) {
                (Some(cert), Some(key)) => builder = builder.client_certificate(cert, key),
                (None, None) => {}
                _ => bail!("--ssl-cert and --ssl-key go together"),
            }
            Some(builder.build().map_err(|e| anyhow::anyhow!("TLS settings: {e}"))?)
        } else {
            None
        };
        Ok(Target { addr, tls })
    }
}

/// One connection to the server under test (TCP, or TLS over TCP).
pub struct Conn {
    stream: ServerStream,
    rbuf: BytesMut,
    wbuf: BytesMut,
    decoder: Decoder,
}

impl Conn {
    /// Connects with TCP_NODELAY (as gearmand's clients do), and a TLS
    /// handshake when the target is a TLS port.
    pub async fn connect(target: &Target) -> anyhow::Result<Conn> {
        let stream = sprocket_client::connect(&target.addr, target.tls.as_ref(), CONNECT_TIMEOUT)
            .await
            .with_context(|| format!("cannot connect to {}", target.addr))?;
        Ok(Conn {
            stream,
            rbuf: BytesMut::with_capacity(16 * 1024),
            wbuf: BytesMut::with_capacity(16 * 1024),
            decoder: Decoder::default(),
        })
    }

    /// Appends a request to the write buffer (nothing is sent yet).
    pub fn queue(&mut self, req: &Request) {
        req.encode(&mut self.wbuf);
    }

    /// Sends everything queued.
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await.context("write to server")?;
            // A TLS session may keep the last record until flushed.
            self.stream.flush().await.context("write to server")?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// A response already in the read buffer, if a whole one is there.
    pub fn try_next(&mut self) -> anyhow::Result<Option<Response>> {
        match self.decoder.decode(&mut self.rbuf) {
            Ok(Some(Frame::Packet { magic: Magic::Res, kind, body })) => {
                Ok(Some(Response::parse(kind, body).with_context(|| format!("bad {kind:?} from server"))?))
            }
            Ok(Some(Frame::Packet { magic: Magic::Req, kind, .. })) => bail!("server sent a request packet ({kind:?})"),
            Ok(Some(Frame::Text(line))) => {
                bail!("server sent text instead of a packet: {:?}", String::from_utf8_lossy(&line))
            }
            Ok(None) => Ok(None),
            Err(e) => bail!("cannot frame the server's reply: {e}"),
        }
    }

    /// Waits for the next response, reading as needed.
    pub async fn next(&mut self) -> anyhow::Result<Response> {
        loop {
            if let Some(r) = self.try_next()? {
                return Ok(r);
            }
            let n = self.stream.read_buf(&mut self.rbuf).await.context("read from server")?;
            if n == 0 {
                bail!("server closed the connection");
            }
        }
    }

    /// Sends `req` and waits for its single reply.
    pub async fn call(&mut self, req: &Request) -> anyhow::Result<Response> {
        self.queue(req);
        self.flush().await?;
        self.next().await
    }
}
