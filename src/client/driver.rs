//! The driver: one task per client that connects, supervises and reconnects. It owns the
//! sans-IO sessions ([`ClientSession`], the Socket.IO [`Decoder`]) and the timers; reader and
//! writer tasks only move packets.

use super::error::{ClientError, ConnectStep, LinkFailure, ProtocolError, Waited};
use super::events::{AckResponder, ClientEvent};
use super::link::{ConnState, Link};
use super::options::{AuthProvider, Backoff, ClientOptions};
use super::transport::{self, Dialer, HttpConn, WsReceiver, WsSender, WsStream};
use crate::engineio::Packet as EioPacket;
use crate::engineio::PayloadBuilder;
use crate::engineio::client::{Channel, ClientSession, ClientSessionEvent};
use crate::repeats::{Repeats, Report, human};
use crate::socketio::{
    ClientNamespaces, Decoder, DecoderLimits, NamespaceError, NamespaceEvent, Packet as SioPacket,
};
use crate::sync::lock;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long the goodbye (DISCONNECT + CLOSE) may take on a graceful close.
const CLOSE_FLUSH: Duration = Duration::from_secs(1);
/// Capacity of the channel from readers/writers to the driver.
const INCOMING_CAPACITY: usize = 256;
/// Capacity of the driver's protocol-packet channel to a writer.
const CTL_CAPACITY: usize = 64;

/// Something a reader or writer task reports; tagged with the link (transport instance) id.
enum Incoming {
    Packet(u64, EioPacket),
    Failed(u64, ClientError),
    Stopped(u64),
}

/// Orders from the driver to a writer task.
enum Ctl {
    /// Protocol packets (pong, CONNECT, DISCONNECT, CLOSE), written before queued items.
    Send(Vec<EioPacket>),
    /// Finish the current write and exit (reporting `Stopped`).
    Stop,
}

/// How one connection ended.
enum Outcome {
    /// Closed by the program.
    Closed,
    /// Failed or dropped; `connected` says whether every namespace had been connected.
    Failed { error: ClientError, connected: bool },
}

/// Aborts the spawned tasks of a connection when it ends, however it ends.
#[derive(Default)]
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// The client's lifetime: connect, serve, back off, repeat.
pub(super) async fn run(
    opts: ClientOptions,
    auth: Option<AuthProvider>,
    dialer: Dialer,
    shared: Arc<Link>,
    events: mpsc::Sender<ClientEvent>,
    mut close_rx: mpsc::Receiver<()>,
) {
    let mut backoff = Backoff::new(opts.reconnection.clone());
    let mut failures = Repeats::default();
    let mut first = true;
    loop {
        if !std::mem::take(&mut first) {
            shared.counters.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        let mut conn = Attempt {
            opts: &opts,
            auth: auth.as_ref(),
            dialer: &dialer,
            shared: &shared,
            events: &events,
            failures: &mut failures,
            connected: false,
        };
        let outcome = conn.run(&mut close_rx).await;
        let (error, connected) = match outcome {
            Outcome::Closed => {
                for ns in shared.reset_link(ConnState::Closed, None) {
                    send_event(
                        &shared,
                        &events,
                        ClientEvent::Disconnected {
                            namespace: ns,
                            reason: "client closed".into(),
                        },
                    );
                }
                tracing::info!("relay {}: closed", opts.url);
                return;
            }
            Outcome::Failed { error, connected } => (error, connected),
        };
        for ns in shared.reset_link(ConnState::Reconnecting, Some(error.to_string())) {
            send_event(
                &shared,
                &events,
                ClientEvent::Disconnected {
                    namespace: ns,
                    reason: error.to_string(),
                },
            );
        }
        if connected {
            backoff.reset();
        }
        let Some(delay) = backoff.next_delay(fastrand::f64()) else {
            tracing::error!(
                "relay {}: {error}; giving up after {} failed attempts",
                opts.url,
                backoff.failures()
            );
            shared.lock().state = ConnState::Closed;
            return;
        };
        shared.lock().failed_attempts = backoff.failures();
        let report = failures.failed(Instant::now().into_std());
        log_failure(&opts.url, &error, connected, delay, report);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = close_rx.recv() => {
                shared.reset_link(ConnState::Closed, None);
                tracing::info!("relay {}: closed", opts.url);
                return;
            }
        }
    }
}

/// Logs a failed attempt or a lost connection: the first of a run at WARN, then a summary with
/// the count now and then (see [`Repeats`]); the attempts in between at DEBUG.
fn log_failure(
    url: &str,
    error: &ClientError,
    lost: bool,
    delay: Duration,
    report: Option<Report>,
) {
    let next = human(delay);
    match report {
        Some(Report::First) if lost => {
            tracing::warn!("relay {url}: connection lost: {error}; reconnecting in {next}")
        }
        Some(Report::First) => tracing::warn!("relay {url}: {error}; retrying in {next}"),
        Some(Report::Summary {
            count,
            total,
            since,
        }) => tracing::warn!(
            "relay {url}: still not connected: {count} more failed attempts ({total} in {}), \
             the last: {error}; next in {next}",
            human(since)
        ),
        None => tracing::debug!("relay {url}: {error}; retrying in {next}"),
    }
}

fn send_event(shared: &Link, events: &mpsc::Sender<ClientEvent>, ev: ClientEvent) {
    if events.try_send(ev).is_err() {
        shared
            .counters
            .events_dropped
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// One connection attempt and, when it succeeds, its whole life.
struct Attempt<'a> {
    opts: &'a ClientOptions,
    auth: Option<&'a AuthProvider>,
    dialer: &'a Dialer,
    shared: &'a Arc<Link>,
    events: &'a mpsc::Sender<ClientEvent>,
    /// The current run of failures, ended by this connection if it succeeds.
    failures: &'a mut Repeats,
    /// Every namespace got its CONNECT answer on this connection.
    connected: bool,
}

/// The upgrade in progress (polling → WebSocket).
enum Upgrade {
    None,
    /// The WebSocket is being opened.
    Dialing(JoinHandle<Result<WsStream, ClientError>>),
    /// `2probe` sent on link `link`; `stopped` counts the polling tasks that paused.
    Probing {
        link: u64,
        tx: WsSender,
        pausing: bool,
        stopped: u8,
    },
}

/// The mutable state of a live connection.
struct Live {
    session: ClientSession,
    decoder: Decoder,
    tasks: Tasks,
    in_tx: mpsc::Sender<Incoming>,
    /// Link id of the current transport and its writer's control channel.
    current: u64,
    ctl: Option<mpsc::Sender<Ctl>>,
    next_link: u64,
    sid: String,
    polling: bool,
    poll_stop: Arc<AtomicBool>,
    upgrade: Upgrade,
    /// Protocol packets held while polling is paused for the upgrade.
    held: Vec<EioPacket>,
    /// The Socket.IO namespaces of this connection (CONNECT answers, their deadline, goodbye).
    namespaces: ClientNamespaces,
}

impl Attempt<'_> {
    async fn run(&mut self, close_rx: &mut mpsc::Receiver<()>) -> Outcome {
        let (in_tx, mut in_rx) = mpsc::channel(INCOMING_CAPACITY);
        let mut live = match self.open(in_tx).await {
            Ok(live) => live,
            Err(error) => {
                return Outcome::Failed {
                    error,
                    connected: false,
                };
            }
        };
        let result = self.serve(&mut live, &mut in_rx, close_rx).await;
        match result {
            Ok(()) => Outcome::Closed,
            Err(error) => Outcome::Failed {
                error,
                connected: self.connected,
            },
        }
    }

    /// Opens the first transport and starts its reader and writer.
    async fn open(&mut self, in_tx: mpsc::Sender<Incoming>) -> Result<Live, ClientError> {
        let timeout = self.opts.connect_timeout;
        let mut live = Live {
            session: ClientSession::new(Instant::now().into_std(), timeout),
            decoder: Decoder::new(DecoderLimits::default()),
            tasks: Tasks::default(),
            in_tx,
            current: 1,
            ctl: None,
            next_link: 2,
            sid: String::new(),
            polling: self.opts.starts_with_polling(),
            poll_stop: Arc::new(AtomicBool::new(false)),
            upgrade: Upgrade::None,
            held: Vec::new(),
            namespaces: ClientNamespaces::new(),
        };
        self.shared.polling.store(live.polling, Ordering::Relaxed);
        if live.polling {
            let (conn, packets) = transport::polling_handshake(self.dialer).await?;
            let now = Instant::now().into_std();
            for p in packets {
                live.session.handle_packet(Channel::Current, p, now);
            }
            // The handshake must be complete now: the sid is needed by the polling tasks.
            self.pump(&mut live).await?;
            if !live.session.is_open() {
                return Err(ClientError::Protocol(ProtocolError::NoHandshake));
            }
            let (ctl_tx, ctl_rx) = mpsc::channel(CTL_CAPACITY);
            let reader = poll_reader(
                live.current,
                conn,
                live.sid.clone(),
                live.poll_stop.clone(),
                live.in_tx.clone(),
            );
            let writer = poll_writer(
                live.current,
                self.dialer.clone(),
                live.sid.clone(),
                self.shared.clone(),
                ctl_rx,
                live.in_tx.clone(),
            );
            live.tasks.0.push(tokio::spawn(reader));
            live.tasks.0.push(tokio::spawn(writer));
            // The CONNECT packets queued by the handshake went to `held`: send them now.
            let held = std::mem::take(&mut live.held);
            live.ctl = Some(ctl_tx);
            self.send_ctl(&mut live, held)?;
        } else {
            let ws = self.dialer.websocket(None).await?;
            live.session = ClientSession::new(Instant::now().into_std(), timeout);
            let link = live.current;
            self.start_ws(&mut live, ws, link);
        }
        Ok(live)
    }

    /// Splits a WebSocket into reader and writer tasks for link `link`, making it current.
    fn start_ws(&self, live: &mut Live, ws: WsStream, link: u64) {
        let (tx, rx) = ws.split();
        live.tasks
            .0
            .push(tokio::spawn(ws_reader(link, rx, live.in_tx.clone())));
        self.start_ws_writer(live, tx, link);
    }

    fn start_ws_writer(&self, live: &mut Live, tx: WsSender, link: u64) {
        let (ctl_tx, ctl_rx) = mpsc::channel(CTL_CAPACITY);
        live.tasks.0.push(tokio::spawn(ws_writer(
            link,
            tx,
            self.shared.clone(),
            ctl_rx,
            live.in_tx.clone(),
        )));
        live.current = link;
        live.ctl = Some(ctl_tx);
    }

    async fn serve(
        &mut self,
        live: &mut Live,
        in_rx: &mut mpsc::Receiver<Incoming>,
        close_rx: &mut mpsc::Receiver<()>,
    ) -> Result<(), ClientError> {
        loop {
            self.pump(live).await?;
            let deadline = [live.session.poll_timeout(), live.namespaces.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .map(Instant::from_std);
            let dialing = matches!(live.upgrade, Upgrade::Dialing(_));
            tokio::select! {
                biased;
                _ = close_rx.recv() => return self.goodbye(live).await,
                inc = in_rx.recv() => match inc {
                    Some(inc) => self.on_incoming(live, inc)?,
                    None => return Err(ClientError::Transport(LinkFailure::TasksEnded)),
                },
                res = dial_result(&mut live.upgrade), if dialing => self.on_dialed(live, res).await,
                _ = sleep_until(deadline) => {
                    let now = Instant::now().into_std();
                    live.session.handle_timeout(now);
                    live
                        .namespaces
                        .handle_timeout(now)
                        .map_err(|e| self.namespace_error(e))?;
                }
            }
        }
    }

    fn on_incoming(&mut self, live: &mut Live, inc: Incoming) -> Result<(), ClientError> {
        let now = Instant::now().into_std();
        match inc {
            Incoming::Packet(link, p) if link == live.current => {
                live.session.handle_packet(Channel::Current, p, now)
            }
            Incoming::Packet(link, p) => {
                if matches!(live.upgrade, Upgrade::Probing { link: l, .. } if l == link) {
                    live.session.handle_packet(Channel::Probe, p, now);
                }
            }
            Incoming::Failed(link, e) if link == live.current => {
                // While pausing, the old polling link may end with an error: the upgrade decides.
                if !matches!(live.upgrade, Upgrade::Probing { pausing: true, .. }) {
                    return Err(e);
                }
                self.polling_stopped(live)?;
            }
            Incoming::Failed(link, e) => {
                if let Upgrade::Probing {
                    link: l, pausing, ..
                } = live.upgrade
                    && l == link
                {
                    if pausing {
                        return Err(e);
                    }
                    tracing::info!("WebSocket upgrade failed ({e}); staying on long-polling");
                    live.upgrade = Upgrade::None;
                }
            }
            Incoming::Stopped(link) if link == live.current => self.polling_stopped(live)?,
            Incoming::Stopped(_) => {}
        }
        Ok(())
    }

    /// A polling task paused for the upgrade; when both did, the upgrade completes.
    fn polling_stopped(&mut self, live: &mut Live) -> Result<(), ClientError> {
        let Upgrade::Probing {
            stopped, pausing, ..
        } = &mut live.upgrade
        else {
            return Err(ClientError::Transport(LinkFailure::PollingStopped));
        };
        if !*pausing {
            return Err(ClientError::Transport(LinkFailure::PollingStopped));
        }
        *stopped += 1;
        if *stopped < 2 {
            return Ok(());
        }
        if !live.session.finish_upgrade() {
            return Err(ClientError::Protocol(ProtocolError::UpgradeIncomplete));
        }
        Ok(())
    }

    async fn on_dialed(&mut self, live: &mut Live, res: Result<WsStream, ClientError>) {
        live.upgrade = Upgrade::None;
        match res {
            Ok(ws) => {
                let link = live.next_link;
                live.next_link += 1;
                let (tx, rx) = ws.split();
                live.tasks
                    .0
                    .push(tokio::spawn(ws_reader(link, rx, live.in_tx.clone())));
                live.upgrade = Upgrade::Probing {
                    link,
                    tx,
                    pausing: false,
                    stopped: 0,
                };
                live.session
                    .start_upgrade(Instant::now().into_std(), self.opts.connect_timeout);
            }
            Err(e) => tracing::info!("WebSocket upgrade failed ({e}); staying on long-polling"),
        }
    }

    /// Drains the sessions: writes protocol packets, handles events.
    async fn pump(&mut self, live: &mut Live) -> Result<(), ClientError> {
        loop {
            let mut progressed = false;
            while let Some((ch, p)) = live.session.poll_transmit() {
                progressed = true;
                match ch {
                    Channel::Current => self.send_ctl(live, vec![p])?,
                    Channel::Probe => self.send_probe(live, p).await?,
                }
            }
            while let Some(ev) = live.session.poll_event() {
                progressed = true;
                self.on_eio_event(live, ev)?;
            }
            if !progressed {
                return Ok(());
            }
        }
    }

    /// Writes on the probe WebSocket; after `5` it becomes the current transport.
    async fn send_probe(&mut self, live: &mut Live, p: EioPacket) -> Result<(), ClientError> {
        let Upgrade::Probing { tx, link, .. } = &mut live.upgrade else {
            return Ok(());
        };
        let link = *link;
        let write = transport::ws_send(tx, &p);
        let res = tokio::time::timeout(self.opts.connect_timeout, write)
            .await
            .map_err(|_| ClientError::Timeout(Waited::UpgradeProbe))
            .and_then(|r| r);
        if let Err(e) = res {
            if matches!(live.upgrade, Upgrade::Probing { pausing: true, .. }) {
                return Err(e);
            }
            tracing::info!("WebSocket upgrade failed ({e}); staying on long-polling");
            live.upgrade = Upgrade::None;
            return Ok(());
        }
        if p == EioPacket::Upgrade
            && let Upgrade::Probing { tx, .. } = std::mem::replace(&mut live.upgrade, Upgrade::None)
        {
            live.polling = false;
            self.shared.polling.store(false, Ordering::Relaxed);
            self.start_ws_writer(live, tx, link);
            let held = std::mem::take(&mut live.held);
            self.send_ctl(live, held)?;
            tracing::info!("relay {}: upgraded to WebSocket", self.opts.url);
        }
        Ok(())
    }

    /// Hands protocol packets to the current writer (or holds them during the upgrade pause).
    fn send_ctl(&self, live: &mut Live, packets: Vec<EioPacket>) -> Result<(), ClientError> {
        if packets.is_empty() {
            return Ok(());
        }
        let paused = matches!(live.upgrade, Upgrade::Probing { pausing: true, .. });
        match &live.ctl {
            Some(ctl) if !paused => ctl.try_send(Ctl::Send(packets)).map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => ClientError::Transport(LinkFailure::Stalled),
                mpsc::error::TrySendError::Closed(_) => {
                    ClientError::Transport(LinkFailure::WriterEnded)
                }
            }),
            _ => {
                live.held.extend(packets);
                Ok(())
            }
        }
    }

    fn on_eio_event(&mut self, live: &mut Live, ev: ClientSessionEvent) -> Result<(), ClientError> {
        match ev {
            ClientSessionEvent::Opened(h) => {
                live.sid = h.sid.clone();
                self.shared
                    .max_payload
                    .store(h.max_payload, Ordering::Relaxed);
                tracing::debug!(
                    "relay {}: Engine.IO open, sid {}, ping {} ms + {} ms, maxPayload {}",
                    self.opts.url,
                    h.sid,
                    h.ping_interval,
                    h.ping_timeout,
                    h.max_payload
                );
                let wanted = (self.opts.namespaces().into_iter())
                    .map(|(ns, auth)| {
                        let auth = match self.auth {
                            Some(provider) => provider(&ns),
                            None => auth,
                        };
                        (ns, auth)
                    })
                    .collect();
                let now = Instant::now().into_std();
                let connects = (live.namespaces)
                    .connect(wanted, now, self.opts.connect_timeout)
                    .iter()
                    .map(|p| EioPacket::Message(p.encode().text))
                    .collect();
                self.send_ctl(live, connects)?;
                if live.polling
                    && self.opts.allows_websocket()
                    && h.upgrades.iter().any(|u| u == "websocket")
                {
                    let dialer = self.dialer.clone();
                    let sid = h.sid.clone();
                    live.upgrade = Upgrade::Dialing(tokio::spawn(async move {
                        dialer.websocket(Some(&sid)).await
                    }));
                }
            }
            ClientSessionEvent::Message(text) => {
                let p = live
                    .decoder
                    .feed_text(text)
                    .map_err(|e| ClientError::Protocol(e.into()))?;
                if let Some(p) = p {
                    self.on_sio(live, p)?;
                }
            }
            ClientSessionEvent::Binary(data) => {
                let p = live
                    .decoder
                    .feed_binary(data)
                    .map_err(|e| ClientError::Protocol(e.into()))?;
                if let Some(p) = p {
                    self.on_sio(live, p)?;
                }
            }
            ClientSessionEvent::UpgradeReady => {
                if let Upgrade::Probing { pausing, .. } = &mut live.upgrade {
                    *pausing = true;
                    live.poll_stop.store(true, Ordering::Relaxed);
                    if let Some(ctl) = live.ctl.take() {
                        // The writer exits after its current POST and reports Stopped.
                        let _ = ctl.try_send(Ctl::Stop);
                    }
                }
            }
            ClientSessionEvent::UpgradeFailed => {
                if matches!(live.upgrade, Upgrade::Probing { pausing: true, .. }) {
                    return Err(ClientError::Timeout(Waited::UpgradeStalled));
                }
                tracing::info!("WebSocket upgrade probe failed; staying on long-polling");
                live.upgrade = Upgrade::None;
            }
            ClientSessionEvent::Closed(reason) => return Err(reason.into()),
        }
        Ok(())
    }

    fn on_sio(&mut self, live: &mut Live, p: SioPacket) -> Result<(), ClientError> {
        let event = live
            .namespaces
            .handle_packet(p)
            .map_err(|e| self.namespace_error(e))?;
        match event {
            None => {}
            Some(NamespaceEvent::Connected { namespace, all }) => {
                self.shared.lock().connected.insert(namespace.clone());
                tracing::debug!("relay {}: namespace {namespace} connected", self.opts.url);
                // State and counters first: whoever sees the event must see them updated.
                if all {
                    self.connected = true;
                    let mut inner = self.shared.lock();
                    inner.state = ConnState::Connected;
                    inner.failed_attempts = 0;
                    drop(inner);
                    self.shared
                        .counters
                        .connects
                        .fetch_add(1, Ordering::Relaxed);
                    match self.failures.recovered(Instant::now().into_std()) {
                        Some(run) => tracing::info!(
                            "relay {}: connected again after {} failure{} over {}",
                            self.opts.url,
                            run.failures,
                            if run.failures == 1 { "" } else { "s" },
                            human(run.lasted)
                        ),
                        None => tracing::info!("relay {}: connected", self.opts.url),
                    }
                }
                send_event(
                    self.shared,
                    self.events,
                    ClientEvent::Connected { namespace },
                );
            }
            Some(NamespaceEvent::Event {
                namespace,
                name,
                args,
                ack,
            }) => {
                let ack = ack.map(|id| AckResponder {
                    link: self.shared.clone(),
                    namespace: namespace.clone(),
                    id,
                });
                let event = ClientEvent::Event {
                    namespace,
                    name,
                    args,
                    ack,
                };
                send_event(self.shared, self.events, event);
            }
            Some(NamespaceEvent::Ack { id, args }) => {
                if let Some(tx) = lock(&self.shared.acks).resolve(id) {
                    let _ = tx.send(args);
                }
            }
        }
        Ok(())
    }

    /// A namespace failure ends the connection; a refusal is also reported as an event, with
    /// the relay's message.
    fn namespace_error(&self, e: NamespaceError) -> ClientError {
        match e {
            NamespaceError::Refused {
                namespace,
                message,
                data,
            } => {
                let event = ClientEvent::ConnectError {
                    namespace: namespace.clone(),
                    message: message.clone(),
                    data,
                };
                send_event(self.shared, self.events, event);
                ClientError::Refused { namespace, message }
            }
            NamespaceError::Disconnected(ns) => {
                ClientError::Transport(LinkFailure::NamespaceDisconnected(ns))
            }
            NamespaceError::ConnectTimeout(missing) => {
                ClientError::Timeout(Waited::Namespaces(missing))
            }
        }
    }

    /// Graceful close: DISCONNECT each namespace, CLOSE the session, let the writer flush.
    async fn goodbye(&mut self, live: &mut Live) -> Result<(), ClientError> {
        let mut bye: Vec<EioPacket> = (live.namespaces.goodbye().iter())
            .map(|p| EioPacket::Message(p.encode().text))
            .collect();
        live.session.close();
        while let Some((_, p)) = live.session.poll_transmit() {
            bye.push(p);
        }
        if let Some(ctl) = live.ctl.take() {
            let flushed = async {
                ctl.send(Ctl::Send(bye)).await.ok()?;
                ctl.send(Ctl::Stop).await.ok()?;
                ctl.closed().await;
                Some(())
            };
            let _ = tokio::time::timeout(CLOSE_FLUSH, flushed).await;
        }
        Ok(())
    }
}

async fn dial_result(up: &mut Upgrade) -> Result<WsStream, ClientError> {
    match up {
        Upgrade::Dialing(h) => match h.await {
            Ok(r) => r,
            Err(e) => Err(ClientError::Connect {
                step: ConnectStep::WebSocket,
                peer: "the upgrade task".into(),
                source: e.into(),
            }),
        },
        _ => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn ws_reader(link: u64, mut rx: WsReceiver, out: mpsc::Sender<Incoming>) {
    loop {
        let msg = match transport::ws_recv(&mut rx).await {
            Ok(Some(p)) => Incoming::Packet(link, p),
            Ok(None) => {
                Incoming::Failed(link, ClientError::Transport(LinkFailure::WebSocketClosed))
            }
            Err(e) => Incoming::Failed(link, e),
        };
        let last = matches!(msg, Incoming::Failed(..));
        if out.send(msg).await.is_err() || last {
            return;
        }
    }
}

async fn poll_reader(
    link: u64,
    mut conn: HttpConn,
    sid: String,
    stop: Arc<AtomicBool>,
    out: mpsc::Sender<Incoming>,
) {
    while !stop.load(Ordering::Relaxed) {
        match conn.get(Some(&sid)).await {
            Ok(packets) => {
                for p in packets {
                    if out.send(Incoming::Packet(link, p)).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                let _ = out.send(Incoming::Failed(link, e)).await;
                return;
            }
        }
    }
    let _ = out.send(Incoming::Stopped(link)).await;
}

/// Waits until there is something to write; `None` means stop.
async fn wait_work(shared: &Link, ctl: &mut mpsc::Receiver<Ctl>) -> Option<Vec<EioPacket>> {
    tokio::select! {
        biased;
        c = ctl.recv() => match c {
            Some(Ctl::Send(p)) => Some(p),
            Some(Ctl::Stop) | None => None,
        },
        _ = shared.notify.notified() => Some(Vec::new()),
    }
}

/// Takes protocol packets already waiting, without blocking. Returns true when a stop order
/// came after them (write them, then stop).
fn drain_ctl(ctl: &mut mpsc::Receiver<Ctl>, out: &mut Vec<EioPacket>) -> bool {
    while let Ok(c) = ctl.try_recv() {
        match c {
            Ctl::Send(p) => out.extend(p),
            Ctl::Stop => return true,
        }
    }
    false
}

/// The Engine.IO packets of one queued Socket.IO packet: the text part, then each attachment.
fn eio_packets(e: crate::socketio::Encoded) -> impl Iterator<Item = EioPacket> {
    std::iter::once(EioPacket::Message(e.text))
        .chain(e.attachments.into_iter().map(EioPacket::Binary))
}

async fn ws_writer(
    link: u64,
    mut tx: WsSender,
    shared: Arc<Link>,
    mut ctl: mpsc::Receiver<Ctl>,
    out: mpsc::Sender<Incoming>,
) {
    let mut batch = Vec::new();
    let result = async {
        loop {
            // Protocol packets first (pongs must not wait behind a queue of frames), then one
            // queued Socket.IO packet, then look at the protocol packets again.
            if drain_ctl(&mut ctl, &mut batch) {
                for p in batch.drain(..) {
                    transport::ws_send(&mut tx, &p).await?;
                }
                return Ok(());
            }
            if batch.is_empty() {
                match shared.pop() {
                    Some(e) => batch.extend(eio_packets(e)),
                    None => match wait_work(&shared, &mut ctl).await {
                        Some(p) => {
                            batch.extend(p);
                            continue;
                        }
                        None => return Ok(()),
                    },
                }
            }
            for p in batch.drain(..) {
                transport::ws_send(&mut tx, &p).await?;
            }
        }
    }
    .await;
    let msg = match result {
        Ok(()) => {
            let _ = tx.close(None).await;
            Incoming::Stopped(link)
        }
        Err(e) => Incoming::Failed(link, e),
    };
    let _ = out.send(msg).await;
}

async fn poll_writer(
    link: u64,
    dialer: Dialer,
    sid: String,
    shared: Arc<Link>,
    mut ctl: mpsc::Receiver<Ctl>,
    out: mpsc::Sender<Incoming>,
) {
    let result = async {
        let mut conn = dialer.http().await?;
        let mut carry: Vec<EioPacket> = Vec::new();
        loop {
            let mut first = Vec::new();
            if drain_ctl(&mut ctl, &mut first) {
                let mut builder = PayloadBuilder::new(usize::MAX);
                for p in carry.iter().chain(&first) {
                    builder.push(p);
                }
                if !builder.is_empty() {
                    conn.post(&sid, builder.finish()).await?;
                }
                return Ok(());
            }
            let limit =
                usize::try_from(shared.max_payload.load(Ordering::Relaxed)).unwrap_or(usize::MAX);
            let mut builder = PayloadBuilder::new(limit);
            // Carried packets first: an attachment must follow its text part without a gap.
            let mut pending = std::mem::take(&mut carry).into_iter().chain(first);
            for p in pending.by_ref() {
                if !builder.push(&p) {
                    carry.push(p);
                    break;
                }
            }
            carry.extend(pending);
            while carry.is_empty() {
                let Some(e) = shared.pop() else { break };
                let mut packets = eio_packets(e);
                for p in packets.by_ref() {
                    if !builder.push(&p) {
                        carry.push(p);
                        break;
                    }
                }
                carry.extend(packets);
            }
            if builder.is_empty() {
                match wait_work(&shared, &mut ctl).await {
                    Some(p) => carry.extend(p),
                    None => return Ok(()),
                }
                continue;
            }
            conn.post(&sid, builder.finish()).await?;
        }
    }
    .await;
    let msg = match result {
        Ok(()) => Incoming::Stopped(link),
        Err(e) => Incoming::Failed(link, e),
    };
    let _ = out.send(msg).await;
}
