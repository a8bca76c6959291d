//! Sockets: TCP (+ TLS) streams, the WebSocket transport and the long-polling requests.
//! Everything protocol-related is decided by [`crate::engineio::client::ClientSession`]; this
//! module only moves Engine.IO packets.

use super::error::{BoxError, ClientError, ConnectStep, LinkFailure, ProtocolError, Waited};
use super::options::Endpoint;
use crate::config::Transport;
use crate::engineio::Packet;
use crate::engineio::decode_payload;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A byte stream to the relay, plain or TLS.
pub(super) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Largest message accepted from the relay on either transport.
pub(super) const MAX_INCOMING: usize = 16 << 20;

/// What a transport needs to open connections.
#[derive(Clone)]
pub(super) struct Dialer {
    /// Where.
    pub endpoint: Endpoint,
    /// TLS configuration when the endpoint uses TLS.
    pub tls: Option<Arc<ClientConfig>>,
    /// Extra request headers.
    pub headers: BTreeMap<String, String>,
    /// Bound on TCP connect + TLS handshake + the first HTTP exchange.
    pub timeout: Duration,
}

impl Dialer {
    /// Opens a TCP (+ TLS) stream with `TCP_NODELAY`.
    pub(super) async fn stream(&self) -> Result<Box<dyn Io>, ClientError> {
        let e = &self.endpoint;
        let connect = async {
            let tcp = TcpStream::connect((e.host.as_str(), e.port))
                .await
                .map_err(|err| self.failed(ConnectStep::Tcp, err))?;
            tcp.set_nodelay(true)
                .map_err(|err| self.failed(ConnectStep::TcpNoDelay, err))?;
            let Some(config) = &self.tls else {
                return Ok(Box::new(tcp) as Box<dyn Io>);
            };
            let name = ServerName::try_from(e.host.clone()).map_err(|err| ClientError::Tls {
                peer: e.host.clone(),
                source: err.into(),
            })?;
            let tls = tokio_rustls::TlsConnector::from(config.clone())
                .connect(name, tcp)
                .await
                .map_err(|err| ClientError::Tls {
                    peer: e.authority(),
                    source: err.into(),
                })?;
            Ok(Box::new(tls) as Box<dyn Io>)
        };
        tokio::time::timeout(self.timeout, connect)
            .await
            .map_err(|_| ClientError::Timeout(Waited::Connecting(e.authority())))?
    }

    /// A failed connection step towards this relay.
    pub(super) fn failed(&self, step: ConnectStep, source: impl Into<BoxError>) -> ClientError {
        ClientError::Connect {
            step,
            peer: self.endpoint.authority(),
            source: source.into(),
        }
    }

    /// Opens the WebSocket transport (`sid` for an upgrade).
    pub(super) async fn websocket(&self, sid: Option<&str>) -> Result<WsStream, ClientError> {
        use async_tungstenite::tungstenite::client::IntoClientRequest as _;
        let stream = self.stream().await?;
        let mut req = self
            .endpoint
            .ws_url(sid)
            .into_client_request()
            .map_err(|e| self.failed(ConnectStep::WebSocket, e))?;
        for (k, v) in &self.headers {
            if let (Ok(k), Ok(v)) = (
                http::HeaderName::try_from(k.as_str()),
                http::HeaderValue::try_from(v.as_str()),
            ) {
                req.headers_mut().insert(k, v);
            }
        }
        let config = async_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(MAX_INCOMING))
            .max_frame_size(Some(MAX_INCOMING));
        let handshake =
            async_tungstenite::tokio::client_async_with_config(req, stream, Some(config));
        let (ws, _resp) = tokio::time::timeout(self.timeout, handshake)
            .await
            .map_err(|_| {
                ClientError::Timeout(Waited::WebSocketHandshake(self.endpoint.authority()))
            })?
            .map_err(|e| self.failed(ConnectStep::WebSocket, e))?;
        Ok(ws)
    }

    /// Opens one HTTP/1.1 connection for polling requests.
    pub(super) async fn http(&self) -> Result<HttpConn, ClientError> {
        let stream = self.stream().await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.failed(ConnectStep::Http, e))?;
        let task = tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("polling connection ended: {e}");
            }
        });
        Ok(HttpConn {
            sender,
            task,
            dialer: self.clone(),
        })
    }
}

/// The WebSocket stream type of the client.
pub(super) type WsStream =
    async_tungstenite::WebSocketStream<async_tungstenite::tokio::TokioAdapter<Box<dyn Io>>>;

/// The writing half of [`WsStream`].
pub(super) type WsSender =
    async_tungstenite::WebSocketSender<async_tungstenite::tokio::TokioAdapter<Box<dyn Io>>>;

/// The reading half of [`WsStream`].
pub(super) type WsReceiver =
    async_tungstenite::WebSocketReceiver<async_tungstenite::tokio::TokioAdapter<Box<dyn Io>>>;

/// Writes one Engine.IO packet as one WebSocket message.
pub(super) async fn ws_send(tx: &mut WsSender, packet: &Packet) -> Result<(), ClientError> {
    use crate::engineio::WsFrame;
    use async_tungstenite::tungstenite::Message;
    let msg = match packet.to_ws() {
        WsFrame::Text(s) => Message::Text(
            async_tungstenite::tungstenite::Utf8Bytes::try_from(Bytes::from(s))
                .map_err(|_| ClientError::Protocol(ProtocolError::NonUtf8Text))?,
        ),
        WsFrame::Binary(b) => Message::Binary(b),
    };
    tx.send(msg)
        .await
        .map_err(|e| ClientError::Transport(LinkFailure::WebSocketWrite(e.into())))
}

/// Reads the next Engine.IO packet; `Ok(None)` when the relay closed the WebSocket.
pub(super) async fn ws_recv(rx: &mut WsReceiver) -> Result<Option<Packet>, ClientError> {
    use async_tungstenite::tungstenite::Message;
    use futures_util::StreamExt as _;
    loop {
        let msg = match rx.next().await {
            None => return Ok(None),
            Some(Err(e)) => {
                return Err(ClientError::Transport(LinkFailure::WebSocketRead(e.into())));
            }
            Some(Ok(m)) => m,
        };
        let packet = match msg {
            Message::Text(t) => Packet::from_ws_text_bytes(Bytes::from(t)),
            Message::Binary(b) => Ok(Packet::Binary(b)),
            Message::Close(_) => return Ok(None),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
        };
        return packet
            .map(Some)
            .map_err(|e| ClientError::Protocol(e.into()));
    }
}

/// One keep-alive HTTP/1.1 connection used for polling GETs or POSTs.
pub(super) struct HttpConn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    task: tokio::task::JoinHandle<()>,
    dialer: Dialer,
}

impl Drop for HttpConn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HttpConn {
    async fn request(
        &mut self,
        method: http::Method,
        sid: Option<&str>,
        body: Bytes,
    ) -> Result<Bytes, ClientError> {
        let e = &self.dialer.endpoint;
        let mut req = http::Request::builder()
            .method(method.clone())
            .uri(e.path_and_query(Transport::Polling, sid))
            .header(http::header::HOST, e.authority());
        if method == http::Method::POST {
            req = req.header(http::header::CONTENT_TYPE, "text/plain;charset=UTF-8");
        }
        for (k, v) in &self.dialer.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| self.dialer.failed(ConnectStep::Http, e))?;
        let failed = |source: BoxError| {
            ClientError::Transport(LinkFailure::Polling {
                method: method.clone(),
                source,
            })
        };
        self.sender.ready().await.map_err(|e| failed(e.into()))?;
        let resp = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| failed(e.into()))?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_INCOMING)
            .collect()
            .await
            .map_err(failed)?
            .to_bytes();
        if !status.is_success() {
            return Err(ClientError::Transport(LinkFailure::PollingStatus {
                method,
                status,
                body: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            }));
        }
        Ok(body)
    }

    /// One long-polling GET: the packets the relay had for us.
    pub(super) async fn get(&mut self, sid: Option<&str>) -> Result<Vec<Packet>, ClientError> {
        let body = self.request(http::Method::GET, sid, Bytes::new()).await?;
        decode_payload(body, MAX_INCOMING).map_err(|e| ClientError::Protocol(e.into()))
    }

    /// One POST of an encoded payload (the relay answers `ok` or `OK`).
    pub(super) async fn post(&mut self, sid: &str, payload: Bytes) -> Result<(), ClientError> {
        self.request(http::Method::POST, Some(sid), payload)
            .await
            .map(drop)
    }
}

/// The first polling GET: returns the connection (reused for the next GETs) and the handshake JSON.
pub(super) async fn polling_handshake(
    dialer: &Dialer,
) -> Result<(HttpConn, Vec<Packet>), ClientError> {
    let work = async {
        let mut conn = dialer.http().await?;
        let packets = conn.get(None).await?;
        Ok::<_, ClientError>((conn, packets))
    };
    tokio::time::timeout(dialer.timeout, work)
        .await
        .map_err(|_| ClientError::Timeout(Waited::PollingHandshake(dialer.endpoint.authority())))?
}
