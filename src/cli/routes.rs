//! `minicloud routes …`: external routes to services on this machine, printed for people.

use super::error::CliError;
use super::table;
use super::view::RouteView;
use super::{encode_segment, ApiClient};

pub async fn list(api: &ApiClient) -> Result<(), CliError> {
    let routes: Vec<RouteView> = api.get("/api/routes").await?;
    if routes.is_empty() {
        println!("No routes. Add one with: minicloud routes add HOST IP:PORT");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = routes
        .iter()
        .map(|r| vec![r.host.clone(), r.upstream.clone()])
        .collect();
    print!("{}", table::render(&["host", "upstream"], &rows));
    Ok(())
}

pub async fn add(api: &ApiClient, host: &str, upstream: &str) -> Result<(), CliError> {
    let body = serde_json::json!({ "host": host, "upstream": upstream });
    let route: RouteView = api.post("/api/routes", &body).await?;
    println!("{} → {}", route.host, route.upstream);
    Ok(())
}

pub async fn remove(api: &ApiClient, host: &str) -> Result<(), CliError> {
    api.delete(&format!("/api/routes/{}", encode_segment(host)))
        .await?;
    println!("removed {host}");
    Ok(())
}
