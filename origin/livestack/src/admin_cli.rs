//! `livestack admin`: the admin API from the command line. Every command
//! is one HTTP call to an origin's admin listener (`deploy/openapi.json`);
//! the JSON answer is printed on stdout, an error answer's reason on stderr
//! with a non-zero exit.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::{Args, Subcommand, ValueEnum};
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};

/// `livestack admin` flags.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The admin API base URL.
    #[arg(
        long,
        env = "LIVESTACK_ADMIN_URL",
        default_value = "http://127.0.0.1:9091"
    )]
    url: String,
    /// The admin bearer token.
    #[arg(long, env = "LIVESTACK_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// File holding the admin bearer token.
    #[arg(
        long,
        env = "LIVESTACK_ADMIN_TOKEN_FILE",
        value_name = "PATH",
        conflicts_with = "token"
    )]
    token_file: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// List the registry's nodes with their load.
    Nodes,
    /// List live streams with node, bit rate and viewers.
    Streams,
    /// List sessions (publishers, viewers, room members).
    Sessions,
    /// Stream keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Disconnect a stream's publisher (on whichever node holds it).
    Kick {
        /// The broadcast NAME.
        stream: String,
    },
    /// Drain a node: it takes no new work; viewers move elsewhere.
    Drain {
        /// The node id.
        node: String,
    },
    /// Stop draining a node.
    Undrain {
        /// The node id.
        node: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// List keys (never their secrets).
    List,
    /// Create a key and print it with its secret (shown once).
    Create {
        /// The broadcast NAME, or `*` for every stream.
        #[arg(long)]
        stream: String,
        /// What the key allows.
        #[arg(long, value_enum, default_value_t = ScopeArg::Publish)]
        scope: ScopeArg,
        /// Lifetime, e.g. 24h; none: until revoked.
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Option<Duration>,
        /// The secret (12..=79 characters); generated when omitted.
        #[arg(long)]
        secret: Option<String>,
    },
    /// Revoke a key by id: it can no longer publish or play.
    Revoke {
        /// The key id.
        id: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ScopeArg {
    Publish,
    Play,
    Both,
}

impl ScopeArg {
    fn as_str(self) -> &'static str {
        match self {
            ScopeArg::Publish => "publish",
            ScopeArg::Play => "play",
            ScopeArg::Both => "both",
        }
    }
}

/// Percent-encodes a path segment (RFC 3986 unreserved characters kept).
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Runs one admin command.
///
/// # Errors
/// Connection failures, and any non-2xx answer (its reason).
pub async fn run(args: AdminArgs) -> Result<()> {
    let (method, path, body) = match &args.command {
        AdminCommand::Nodes => (Method::GET, "/v1/nodes".to_owned(), None),
        AdminCommand::Streams => (Method::GET, "/v1/streams".to_owned(), None),
        AdminCommand::Sessions => (Method::GET, "/v1/sessions".to_owned(), None),
        AdminCommand::Keys(KeysCommand::List) => (Method::GET, "/v1/keys".to_owned(), None),
        AdminCommand::Keys(KeysCommand::Create {
            stream,
            scope,
            ttl,
            secret,
        }) => {
            let mut b = serde_json::json!({ "stream": stream, "scope": scope.as_str() });
            if let Some(t) = ttl {
                b["ttl_seconds"] = t.as_secs().into();
            }
            if let Some(s) = secret {
                b["secret"] = s.clone().into();
            }
            (Method::POST, "/v1/keys".to_owned(), Some(b.to_string()))
        }
        AdminCommand::Keys(KeysCommand::Revoke { id }) => {
            (Method::DELETE, format!("/v1/keys/{}", segment(id)), None)
        }
        AdminCommand::Kick { stream } => (
            Method::POST,
            format!("/v1/streams/{}/kick", segment(stream)),
            None,
        ),
        AdminCommand::Drain { node } => (
            Method::POST,
            format!("/v1/nodes/{}/drain", segment(node)),
            None,
        ),
        AdminCommand::Undrain { node } => (
            Method::DELETE,
            format!("/v1/nodes/{}/drain", segment(node)),
            None,
        ),
    };
    let url = format!("{}{path}", args.url.trim_end_matches('/'));
    let mut req = Request::builder().method(method).uri(&url);
    let token = match &args.token_file {
        Some(path) => Some(crate::secrets::read_secret_file(path, "--token-file")?),
        None => args.token.clone(),
    };
    if let Some(t) = &token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    // Commands without a body send an empty one.
    let req = req
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .with_context(|| format!("invalid admin URL {url}"))?;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let resp = tokio::time::timeout(Duration::from_secs(30), client.request(req))
        .await
        .with_context(|| format!("{url}: no answer within 30 s"))?
        .with_context(|| format!("cannot reach the admin API at {url}"))?;
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .context("reading the answer")?
        .to_bytes();
    let text = String::from_utf8_lossy(&bytes);
    if !status.is_success() {
        let reason = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("reason").and_then(|r| r.as_str()).map(str::to_owned))
            .unwrap_or_else(|| text.trim().to_owned());
        bail!("{status}: {reason}");
    }
    if !text.trim().is_empty() {
        println!("{}", text.trim_end());
    }
    Ok(())
}
