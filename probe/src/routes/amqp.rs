//! `POST /amqp[?queue=Q]` publishes the body to a durable queue (default `probe`),
//! `GET /amqp[?queue=Q]` takes one message from it (`404` when empty): the probe's proof that
//! `AMQP_URL` works. One connection per request.

use amqprs::channel::{BasicGetArguments, BasicPublishArguments, QueueDeclareArguments};
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::BasicProperties;
use http_body_util::BodyExt;
use hyper::{Method, StatusCode};

use crate::http::{self, Request, Response};

pub async fn handle(req: Request) -> Response {
    let Some(url) = std::env::var("AMQP_URL").ok().filter(|v| !v.is_empty()) else {
        return http::text(StatusCode::SERVICE_UNAVAILABLE, "AMQP_URL is not set\n");
    };
    let queue = http::query_param(&req, "queue")
        .filter(|q| !q.is_empty())
        .unwrap_or("probe")
        .to_owned();
    let args = match connection_args(&url) {
        Ok(a) => a,
        Err(e) => return http::bad_request(format!("AMQP_URL: {e}")),
    };
    let result = match *req.method() {
        Method::POST => match req.into_body().collect().await {
            Ok(body) => publish(&args, &queue, body.to_bytes().to_vec())
                .await
                .map(|()| http::text(StatusCode::CREATED, "published\n")),
            Err(e) => return http::bad_request(format!("cannot read body: {e}")),
        },
        Method::GET => get(&args, &queue).await.map(|msg| match msg {
            Some(body) => {
                http::with_type(StatusCode::OK, "application/octet-stream", http::full(body))
            }
            None => http::text(StatusCode::NOT_FOUND, "the queue is empty\n"),
        }),
        _ => return http::text(StatusCode::METHOD_NOT_ALLOWED, "GET or POST\n"),
    };
    result.unwrap_or_else(|e| {
        eprintln!("probe: /amqp: {e}");
        http::text(StatusCode::BAD_GATEWAY, format!("message bus: {e}\n"))
    })
}

/// `amqp://USER:PASS@HOST[:PORT]/VHOST`, parts percent-decoded; the host must be an IP or a
/// name the caller can live without resolving through NSS (tokio parses IPs itself).
fn connection_args(url: &str) -> Result<OpenConnectionArguments, String> {
    let url = url::Url::parse(url).map_err(|e| e.to_string())?;
    if url.scheme() != "amqp" {
        return Err("expected amqp://".into());
    }
    let decode =
        |s: &str| percent_encoding_decode(s).ok_or_else(|| "credentials are not UTF-8".to_string());
    let host = url.host_str().ok_or("no host")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let vhost = decode(url.path().trim_start_matches('/'))?;
    let vhost = if vhost.is_empty() {
        "/".to_owned()
    } else {
        vhost
    };
    Ok(OpenConnectionArguments::new(
        host,
        url.port().unwrap_or(5672),
        &decode(url.username())?,
        &decode(url.password().unwrap_or_default())?,
    )
    .virtual_host(&vhost)
    .finish())
}

fn percent_encoding_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

async fn open(
    args: &OpenConnectionArguments,
    queue: &str,
) -> Result<(Connection, amqprs::channel::Channel), amqprs::error::Error> {
    let conn = Connection::open(args).await?;
    let channel = conn.open_channel(None).await?;
    channel
        .queue_declare(QueueDeclareArguments::durable_client_named(queue))
        .await?;
    Ok((conn, channel))
}

async fn publish(
    args: &OpenConnectionArguments,
    queue: &str,
    body: Vec<u8>,
) -> Result<(), amqprs::error::Error> {
    let (conn, channel) = open(args, queue).await?;
    let mut props = BasicProperties::default();
    props.with_persistence(true);
    channel
        .basic_publish(props, body, BasicPublishArguments::new("", queue))
        .await?;
    // Closing the channel waits for the broker: the message is in the queue when we answer.
    channel.close().await?;
    conn.close().await?;
    Ok(())
}

async fn get(
    args: &OpenConnectionArguments,
    queue: &str,
) -> Result<Option<Vec<u8>>, amqprs::error::Error> {
    let (conn, channel) = open(args, queue).await?;
    let msg = channel
        .basic_get(BasicGetArguments::new(queue).no_ack(true).finish())
        .await?;
    channel.close().await?;
    conn.close().await?;
    Ok(msg.map(|(_, _, body)| body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(percent_encoding_decode("a%2Fb%40").as_deref(), Some("a/b@"));
        assert_eq!(percent_encoding_decode("plain").as_deref(), Some("plain"));
        assert!(connection_args("amqp://u:p@172.18.0.1:5672/app_x").is_ok());
        assert!(connection_args("http://u:p@h/").is_err());
    }
}
