//! No Docker engine runs here, so the shipping files are checked against the code instead:
//! every variable they set is one the service reads, ports and health paths match the
//! defaults, and both services get the same ticket secret.

mod support;

use serde_norway::Value;

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn yaml(path: &str) -> Value {
    serde_norway::from_str(&read(path)).unwrap()
}

fn variables(service: &str) -> Vec<String> {
    match service {
        "matchmaker" => matchmaker::config::variables(),
        "signaler" => signaler::variables(),
        other => panic!("unknown service {other}"),
    }
}

fn default_port(service: &str) -> u16 {
    match service {
        "matchmaker" => matchmaker::config::DEFAULT_PORT,
        _ => signaler::DEFAULT_PORT,
    }
}

#[test]
fn compose_sets_only_known_variables_and_default_ports() {
    let compose = yaml("docker-compose.yml");
    for service in ["matchmaker", "signaler"] {
        let env = compose["services"][service]["environment"].as_mapping().unwrap();
        let known = variables(service);
        for (key, _) in env {
            let key = key.as_str().unwrap();
            assert!(known.contains(&key.to_owned()), "{service} in docker-compose.yml sets unknown {key}");
        }
        let port = default_port(service).to_string();
        assert_eq!(env[&Value::from("PORT")].as_str(), Some(port.as_str()));
        let ports: Vec<&str> =
            compose["services"][service]["ports"].as_sequence().unwrap().iter().filter_map(Value::as_str).collect();
        assert!(ports.contains(&format!("{port}:{port}").as_str()), "{service} publishes {ports:?}");
        assert_eq!(env[&Value::from("REDIS_URL")].as_str(), Some("redis://redis:6379"));
    }
}

#[test]
fn compose_gives_both_services_the_same_ticket_secret() {
    let compose = yaml("docker-compose.yml");
    let secret = |service: &str| compose["services"][service]["environment"]["ROOM_TICKET_SECRET"].clone();
    assert!(secret("matchmaker").as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(secret("matchmaker"), secret("signaler"));
}

#[test]
fn compose_runs_coturn_with_the_secret_the_matchmaker_signs_turn_credentials_with() {
    let compose = yaml("docker-compose.yml");
    let env = &compose["services"]["matchmaker"]["environment"];
    let secret = env["TURN_SECRET"].as_str().unwrap();
    let args: Vec<&str> =
        compose["services"]["coturn"]["command"].as_sequence().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(args.contains(&"--use-auth-secret"), "{args:?}");
    assert!(args.contains(&format!("--static-auth-secret={secret}").as_str()), "{args:?} vs {secret}");
    assert!(args.contains(&"--listening-port=3478"), "{args:?}");
    // With compose's defaults filled in, the matchmaker accepts the settings.
    let local = |text: &str| text.replace("${TURN_HOST:-localhost}", "localhost");
    let vars = [("TURN_SECRET", secret.to_owned()), ("TURN_URLS", local(env["TURN_URLS"].as_str().unwrap()))];
    let turn = shared::turn::Turn::from_vars(vars.map(|(k, v)| (k.to_owned(), v))).unwrap().unwrap();
    assert_eq!(turn.issue("c", 0).urls, ["turn:localhost:3478?transport=udp", "turn:localhost:3478?transport=tcp"]);
}

#[test]
fn compose_points_browsers_at_the_published_signaler_port() {
    let compose = yaml("docker-compose.yml");
    let url = compose["services"]["matchmaker"]["environment"]["SIGNALING_URL"].as_str().unwrap();
    assert!(url.contains(&format!(":{}/ws", signaler::DEFAULT_PORT)), "{url}");
    let config = matchmaker::Config { signaling_url: url.to_owned(), ..Default::default() };
    assert_eq!(config.signaling_url_for(Some("example.com:8080")), "ws://example.com:8081/ws");
}

#[test]
fn render_blueprint_sets_only_known_variables_and_shares_one_generated_secret() {
    let render = yaml("render.yaml");
    let groups = render["envVarGroups"].as_sequence().unwrap();
    let services = render["services"].as_sequence().unwrap();
    let keyvalue = services.iter().find(|s| s["type"] == "keyvalue").expect("a Key Value (Redis) instance");
    let mut secret_groups = Vec::new();
    for service in ["matchmaker", "signaler"] {
        let entry = services.iter().find(|s| s["name"] == format!("strangers-{service}").as_str()).unwrap();
        assert_eq!(entry["dockerfilePath"].as_str(), Some(format!("./{service}/Dockerfile").as_str()));
        let known = variables(service);
        let mut groups_used = Vec::new();
        for var in entry["envVars"].as_sequence().unwrap() {
            if let Some(group) = var["fromGroup"].as_str() {
                groups_used.push(group.to_owned());
                continue;
            }
            let key = var["key"].as_str().unwrap();
            assert!(known.contains(&key.to_owned()), "{service} in render.yaml sets unknown {key}");
            if key == "PORT" {
                assert_eq!(var["value"].as_str(), Some(default_port(service).to_string().as_str()));
            }
            if key == "REDIS_URL" {
                assert_eq!(var["fromService"]["name"], keyvalue["name"]);
            }
        }
        let secret_group = groups
            .iter()
            .find(|g| {
                groups_used.iter().any(|u| g["name"] == u.as_str())
                    && g["envVars"]
                        .as_sequence()
                        .unwrap()
                        .iter()
                        .any(|v| v["key"] == "ROOM_TICKET_SECRET" && v["generateValue"] == true)
            })
            .unwrap_or_else(|| panic!("{service} gets no generated ROOM_TICKET_SECRET"));
        secret_groups.push(secret_group["name"].clone());
    }
    assert_eq!(secret_groups[0], secret_groups[1], "the two services must share one secret");
}

#[test]
fn dockerfiles_expose_the_default_port_and_probe_health() {
    for service in ["matchmaker", "signaler"] {
        let dockerfile = read(&format!("{service}/Dockerfile"));
        let port = default_port(service);
        assert!(dockerfile.contains(&format!("EXPOSE {port}")), "{service}");
        assert!(dockerfile.contains(&format!("ENV PORT={port}")), "{service}");
        assert!(dockerfile.contains(&format!("\"/usr/local/bin/{service}\", \"healthcheck\"")), "{service}");
        assert!(dockerfile.contains("USER nonroot"), "{service}");
        assert!(dockerfile.contains(&format!("cargo build --release --locked -p {service}")), "{service}");
    }
}

#[tokio::test]
async fn the_health_check_paths_of_the_blueprint_answer_200() {
    let render = yaml("render.yaml");
    let stack = support::Stack::start().await;
    for (service, addr) in [("matchmaker", stack.matchmaker), ("signaler", stack.signaler)] {
        let entry = render["services"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|s| s["name"] == format!("strangers-{service}").as_str())
            .unwrap();
        let path = entry["healthCheckPath"].as_str().unwrap();
        assert_eq!(support::http_get(addr, path).await.0, 200, "{service} {path}");
    }
}
