//! An app's logs: the last lines (filtered by a word), a download of more, and a live
//! follow for the page's script. The serving container's log spans its restarts, so after a
//! crash the lines before it are there, with the exit code the page shows above them; a
//! container minicloud removed (replaced, or recreated after it stopped) left its last lines,
//! shown below.

use askama::Template;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use serde::Deserialize;

use super::error::UiError;
use super::pages::app_name;
use super::session::Session;
use super::views::{self, Chrome};
use super::UiState;
use crate::apps::{removed_log_heading, AppError, Apps};
use crate::model::AppName;

/// The most lines the page shows.
const PAGE_LINES: usize = 500;
/// The most lines a download holds.
const DOWNLOAD_LINES: usize = 20_000;

#[derive(Template)]
#[template(path = "logs.html")]
pub struct Logs {
    pub chrome: Chrome,
    pub name: String,
    pub filter: String,
    pub lines: Vec<String>,
    /// How the serving container last ended on its own, when it did.
    pub crash: String,
    /// The web container minicloud removed last: a line saying which, and its last lines.
    pub removed: Option<(String, Vec<String>)>,
}

#[derive(Deserialize, Default)]
pub struct LogQuery {
    /// Only lines containing this text.
    #[serde(default)]
    q: String,
}

/// The last `tail` lines (then, with `follow`, the new ones), each ending in a newline; a
/// stream that breaks says so as its last line.
async fn lines(
    apps: Apps,
    name: AppName,
    tail: usize,
    follow: bool,
) -> Result<impl Stream<Item = String>, AppError> {
    Ok(apps
        .logs(&name, tail, follow)
        .await?
        .map(|line| match line {
            Ok(line) => line,
            Err(e) => format!("[minicloud: the log stream ended: {e}]"),
        }))
}

pub async fn logs(
    State(state): State<UiState>,
    session: Session,
    Path(name): Path<String>,
    Query(query): Query<LogQuery>,
) -> Result<Html<String>, UiError> {
    let name = app_name(&name)?;
    let apps = &state.web.apps;
    let filter = query.q.trim().to_owned();
    let lines = match lines(apps.clone(), name.clone(), PAGE_LINES, false).await {
        Ok(stream) => {
            stream
                .take(PAGE_LINES)
                .filter(|l| std::future::ready(l.contains(&filter)))
                .collect()
                .await
        }
        // No revision runs yet: an empty log, not an error page.
        Err(AppError::Invalid(why)) => vec![format!("[minicloud: {why}]")],
        Err(e) => return Err(e.into()),
    };
    let status = apps.status(&name).await?;
    let crash = match (status.last_exit_code, status.out_of_memory) {
        (_, true) => "It was last stopped for using more memory than its limit.".to_owned(),
        (Some(code), false) if code != 0 => format!("It last exited with code {code}."),
        _ => String::new(),
    };
    let crash = match status.restarts {
        Some(n) if n > 0 => format!("The container restarted {n} times. {crash}"),
        _ => crash,
    };
    let removed = apps
        .removed_log(&name)?
        .map(|log| (removed_log_heading(&log), log.lines));
    Ok(views::render(&Logs {
        chrome: Chrome::new(&session),
        name: name.to_string(),
        filter,
        lines,
        crash: crash.trim().to_owned(),
        removed,
    })?)
}

fn text_response(
    stream: impl Stream<Item = String> + Send + 'static,
    attachment: Option<String>,
) -> Response {
    let body = Body::from_stream(stream.map(|mut l| {
        l.push('\n');
        Ok::<_, std::convert::Infallible>(l)
    }));
    let mut response =
        ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response();
    if let Some(file) = attachment {
        let value = format!("attachment; filename=\"{file}\"");
        if let Ok(value) = header::HeaderValue::from_str(&value) {
            response
                .headers_mut()
                .insert(header::CONTENT_DISPOSITION, value);
        }
    }
    response
}

/// The log as a file: many more lines than the page shows.
pub async fn download(
    State(state): State<UiState>,
    Path(name): Path<String>,
) -> Result<Response, UiError> {
    let name = app_name(&name)?;
    let file = format!("{name}.log");
    let stream = lines(state.web.apps.clone(), name, DOWNLOAD_LINES, false).await?;
    Ok(text_response(stream, Some(file)))
}

/// New lines as they come, for the page's script: plain text, one a line, kept open.
pub async fn follow(
    State(state): State<UiState>,
    Path(name): Path<String>,
) -> Result<Response, UiError> {
    let name = app_name(&name)?;
    let stream = lines(state.web.apps.clone(), name, 0, true).await?;
    Ok(text_response(stream, None))
}
