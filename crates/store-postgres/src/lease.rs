//! The reaper lease: a session-level advisory lock held by a connection of its own. Whoever
//! holds it reaps, prunes and exports the store-derived gauges; it is released when that
//! connection closes (a stopped or killed server), and another server takes it at its next try.

use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls};

use crate::REAPER_LOCK;

pub(crate) struct Lease {
    config: tokio_postgres::Config,
    /// The lease's connection, and whether it holds the lock.
    conn: Mutex<Option<(Client, bool)>>,
}

impl Lease {
    pub(crate) fn new(config: tokio_postgres::Config) -> Self {
        Self {
            config,
            conn: Mutex::new(None),
        }
    }

    /// Whether this instance holds the lease now, trying to take it when it does not.
    pub(crate) async fn holds(&self) -> bool {
        let mut guard = self.conn.lock().await;
        if guard.as_ref().is_some_and(|(c, _)| c.is_closed()) {
            if guard.as_ref().is_some_and(|(_, held)| *held) {
                tracing::warn!("lost the reaper lease's connection; trying to take it again");
            }
            *guard = None;
        }
        if guard.is_none() {
            match self.connect().await {
                Ok(client) => *guard = Some((client, false)),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot connect to try the reaper lease");
                    return false;
                }
            }
        }
        let Some((client, held)) = guard.as_mut() else {
            return false;
        };
        let check = if *held {
            // Still connected, so still holding it?
            client.simple_query("SELECT 1").await.map(|_| true)
        } else {
            client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&REAPER_LOCK])
                .await
                .map(|row| row.get::<_, bool>(0))
        };
        match check {
            Ok(now_held) => {
                if now_held && !*held {
                    tracing::info!(
                        "took the reaper lease: this server reaps and exports the store gauges"
                    );
                }
                *held = now_held;
                now_held
            }
            Err(e) => {
                tracing::warn!(error = %e, "reaper lease check failed");
                *guard = None;
                false
            }
        }
    }

    async fn connect(&self) -> Result<Client, tokio_postgres::Error> {
        let (client, connection) = self.config.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "reaper lease connection closed");
            }
        });
        Ok(client)
    }

    /// Gives the lease up (the connection closes).
    pub(crate) async fn release(&self) {
        self.conn.lock().await.take();
    }
}
