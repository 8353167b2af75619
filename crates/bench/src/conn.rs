//! A raw Gearman connection for the load generator: requests are appended
//! to a write buffer and sent with one syscall per flush, responses are
//! framed by the proto crate's decoder. No client library sits in between,
//! so the generator's own cost per packet stays small.

use anyhow::{bail, Context};
use bytes::BytesMut;
use sprocket_proto::{Decoder, Frame, Magic, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One TCP connection to the server under test.
pub struct Conn {
    stream: TcpStream,
    rbuf: BytesMut,
    wbuf: BytesMut,
    decoder: Decoder,
}

impl Conn {
    /// Connects with TCP_NODELAY (as gearmand's clients do).
    pub async fn connect(addr: &str) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr).await.with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_nodelay(true).context("set TCP_NODELAY")?;
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
