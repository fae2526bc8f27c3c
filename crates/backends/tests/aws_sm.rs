//! The AWS Secrets Manager provider against moto (`moto[server]` 5.2.5), found through
//! `GITSEAL_MOTO_PYTHON` (a python with moto installed). Skipped, with a notice, when it
//! is unset, unless `GITSEAL_REQUIRE_TOOLS=1`.

#![cfg(feature = "aws-secretsmanager")]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_secretsmanager::primitives::Blob;
use aws_sdk_secretsmanager::types::Tag;
use gitseal_backends::aws_sm::{
    AwsCredentials, AwsSecretsManager, AwsSmCall, AwsSmCallCounter, AwsSmClientKey, AwsSmClients,
    AwsSmConfig, NoAwsSmObserver,
};
use gitseal_backends::provider::{FindQuery, ProviderError, SecretProvider, SecretValue};
use gitseal_testkit::fault::{Fault, FaultProxy};
use gitseal_testkit::moto::Moto;

const REGION: &str = "us-east-1";

fn moto() -> Option<Moto> {
    Moto::start()
}

fn static_credentials() -> AwsCredentials {
    AwsCredentials::Static {
        access_key_id: "AKIDTEST".into(),
        secret_access_key: SecretValue::new(b"secret".to_vec()),
        session_token: None,
    }
}

fn config(moto: &Moto) -> AwsSmConfig {
    let mut config = AwsSmConfig::new(REGION, static_credentials());
    config.endpoint = Some(moto.url().to_owned());
    config
}

async fn admin(moto: &Moto) -> aws_sdk_secretsmanager::Client {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(moto.url())
        .credentials_provider(aws_credential_types::Credentials::new(
            "AKIDADMIN",
            "admin",
            None,
            None,
            "test",
        ))
        .load()
        .await;
    aws_sdk_secretsmanager::Client::new(&sdk)
}

async fn create(
    admin: &aws_sdk_secretsmanager::Client,
    name: &str,
    text: &str,
    tags: &[(&str, &str)],
) {
    let mut request = admin.create_secret().name(name).secret_string(text);
    for (k, v) in tags {
        request = request.tags(Tag::builder().key(*k).value(*v).build());
    }
    request.send().await.unwrap();
}

fn text(value: SecretValue) -> String {
    String::from_utf8(value.as_bytes().to_vec()).unwrap()
}

fn kind<T>(result: Result<T, ProviderError>) -> &'static str {
    match result {
        Ok(_) => "Ok",
        Err(e) => e.kind(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_values_properties_and_errors() {
    let Some(moto) = moto() else { return };
    let admin = admin(&moto).await;
    create(
        &admin,
        "app/db",
        r#"{"user":"u","password":"p","db":{"port":5432,"hosts":["a","b"]},"a.b":"dotted"}"#,
        &[],
    )
    .await;
    create(&admin, "app/plain", "just a string", &[]).await;
    admin
        .create_secret()
        .name("app/bin")
        .secret_binary(Blob::new(vec![0u8, 159, 146, 150]))
        .send()
        .await
        .unwrap();
    create(&admin, "app/gone", "x", &[]).await;
    admin
        .delete_secret()
        .secret_id("app/gone")
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();

    let counter = Arc::new(AwsSmCallCounter::new());
    let provider = AwsSecretsManager::new(config(&moto), counter.clone());
    provider.validate().await.unwrap();
    assert_eq!(counter.total(AwsSmCall::ListSecrets), 1);

    let map = provider.get_map("app/db", None).await.unwrap();
    assert_eq!(text(map.property("user").unwrap()), "u");
    assert_eq!(text(map.property("password").unwrap()), "p");
    assert_eq!(text(map.property("db.port").unwrap()), "5432");
    assert_eq!(text(map.property("db.hosts.1").unwrap()), "b");
    assert_eq!(text(map.property("a.b").unwrap()), "dotted");
    assert_eq!(
        text(map.value(None).unwrap()),
        r#"{"user":"u","password":"p","db":{"port":5432,"hosts":["a","b"]},"a.b":"dotted"}"#
    );
    assert_eq!(kind(map.property("nope")), "PropertyNotFound");
    assert_eq!(counter.count(AwsSmCall::GetSecretValue, true), 1);

    let plain = provider.get_map("app/plain", None).await.unwrap();
    assert_eq!(text(plain.value(None).unwrap()), "just a string");
    assert_eq!(kind(plain.property("x")), "PropertyNotFound");

    let bin = provider.get_map("app/bin", None).await.unwrap();
    assert_eq!(bin.value(None).unwrap().as_bytes(), [0u8, 159, 146, 150]);

    let missing = provider.get_map("app/missing", None).await;
    assert!(matches!(&missing, Err(ProviderError::NotFound { key }) if key == "app/missing"));
    let gone = provider.get_map("app/gone", None).await;
    if let Err(e) = &gone {
        eprintln!("gone: {e}");
    }
    assert_eq!(kind(gone), "NotFound");

    // A prefix is prepended to every key.
    let mut prefixed = config(&moto);
    prefixed.prefix = Some("app/".into());
    let prefixed = AwsSecretsManager::new(prefixed, Arc::new(NoAwsSmObserver));
    let map = prefixed.get_map("db", None).await.unwrap();
    assert_eq!(text(map.property("user").unwrap()), "u");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions() {
    let Some(moto) = moto() else { return };
    let admin = admin(&moto).await;
    let first = admin
        .create_secret()
        .name("rotating")
        .secret_string("v1")
        .send()
        .await
        .unwrap();
    let first_id = first.version_id().unwrap().to_owned();
    admin
        .put_secret_value()
        .secret_id("rotating")
        .secret_string("v2")
        .send()
        .await
        .unwrap();
    let provider = AwsSecretsManager::new(config(&moto), Arc::new(NoAwsSmObserver));
    let current = provider.get_map("rotating", None).await.unwrap();
    assert_eq!(text(current.value(None).unwrap()), "v2");
    let current = provider
        .get_map("rotating", Some("AWSCURRENT"))
        .await
        .unwrap();
    assert_eq!(text(current.value(None).unwrap()), "v2");
    let previous = provider
        .get_map("rotating", Some("AWSPREVIOUS"))
        .await
        .unwrap();
    assert_eq!(text(previous.value(None).unwrap()), "v1");
    let by_id = provider
        .get_map("rotating", Some(&format!("uuid/{first_id}")))
        .await
        .unwrap();
    assert_eq!(text(by_id.value(None).unwrap()), "v1");
    assert_eq!(
        kind(
            provider
                .get_map(
                    "rotating",
                    Some("uuid/00000000-0000-0000-0000-000000000000")
                )
                .await
        ),
        "NotFound"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_by_path_regexp_and_tags() {
    let Some(moto) = moto() else { return };
    let admin = admin(&moto).await;
    create(&admin, "team/a/one", r#"{"k":"1"}"#, &[("env", "dev")]).await;
    create(&admin, "team/a/two", "2", &[("env", "development")]).await;
    create(&admin, "team/b/three", "3", &[("env", "dev"), ("app", "x")]).await;
    create(&admin, "other/four", "4", &[("env", "dev")]).await;
    create(&admin, "team/c/skipped", "6", &[]).await;
    create(&admin, "team/a/deleted", "5", &[("env", "dev")]).await;
    admin
        .delete_secret()
        .secret_id("team/a/deleted")
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();

    let counter = Arc::new(AwsSmCallCounter::new());
    let provider = AwsSecretsManager::new(config(&moto), counter.clone());
    let names =
        |found: &[(String, SecretValue)]| found.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();

    let found = provider
        .find(&FindQuery {
            path: Some("team/".into()),
            name_regexp: Some("(one|two|three)$".into()),
            ..FindQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(names(&found), ["team/a/one", "team/a/two", "team/b/three"]);
    assert_eq!(found[0].1.as_bytes(), br#"{"k":"1"}"#);
    assert_eq!(found[1].1.as_bytes(), b"2");

    let found = provider
        .find(&FindQuery {
            tags: BTreeMap::from([("env".into(), "dev".into())]),
            ..FindQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(names(&found), ["other/four", "team/a/one", "team/b/three"]);

    let found = provider
        .find(&FindQuery {
            path: Some("team".into()),
            name_regexp: Some("^team/b/".into()),
            tags: BTreeMap::from([("env".into(), "dev".into()), ("app".into(), "x".into())]),
        })
        .await
        .unwrap();
    assert_eq!(names(&found), ["team/b/three"]);
    assert_eq!(found[0].1.as_bytes(), b"3");

    let found = provider
        .find(&FindQuery {
            name_regexp: Some("nothing-matches".into()),
            ..FindQuery::default()
        })
        .await
        .unwrap();
    assert!(found.is_empty());
    assert_eq!(
        kind(
            provider
                .find(&FindQuery {
                    name_regexp: Some("(".into()),
                    ..FindQuery::default()
                })
                .await
        ),
        "Invalid"
    );
    assert!(counter.total(AwsSmCall::ListSecrets) >= 4);
    // One BatchGetSecretValue per non-empty find (moto 5.2.5 implements it).
    assert_eq!(counter.count(AwsSmCall::BatchGetSecretValue, true), 3);
    assert_eq!(counter.total(AwsSmCall::GetSecretValue), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assumed_roles_and_web_identity() {
    let Some(moto) = moto() else { return };
    let admin = admin(&moto).await;
    create(&admin, "roles/secret", r#"{"k":"v"}"#, &[]).await;

    let mut chained = config(&moto);
    chained.additional_roles = vec!["arn:aws:iam::123456789012:role/first".into()];
    chained.role = Some("arn:aws:iam::123456789012:role/last".into());
    chained.external_id = Some("ext-id".into());
    let provider = AwsSecretsManager::new(chained, Arc::new(NoAwsSmObserver));
    provider.validate().await.unwrap();
    let map = provider.get_map("roles/secret", None).await.unwrap();
    assert_eq!(text(map.property("k").unwrap()), "v");

    let fetched = Arc::new(AtomicUsize::new(0));
    let count = fetched.clone();
    let mut web = AwsSmConfig::new(
        REGION,
        AwsCredentials::WebIdentity {
            role_arn: "arn:aws:iam::123456789012:role/web".into(),
            token: Arc::new(move || {
                count.fetch_add(1, Ordering::SeqCst);
                Box::pin(async { Ok(SecretValue::new(b"header.payload.signature".to_vec())) })
            }),
        },
    );
    web.endpoint = Some(moto.url().to_owned());
    let provider = AwsSecretsManager::new(web, Arc::new(NoAwsSmObserver));
    for _ in 0..3 {
        let map = provider.get_map("roles/secret", None).await.unwrap();
        assert_eq!(text(map.property("k").unwrap()), "v");
    }
    assert_eq!(
        fetched.load(Ordering::SeqCst),
        1,
        "the token is fetched once"
    );

    // A failing token source is a Forbidden.
    let mut broken = AwsSmConfig::new(
        REGION,
        AwsCredentials::WebIdentity {
            role_arn: "arn:aws:iam::123456789012:role/web".into(),
            token: Arc::new(|| {
                Box::pin(async { Err(ProviderError::Forbidden("no token".into())) })
            }),
        },
    );
    broken.endpoint = Some(moto.url().to_owned());
    let provider = AwsSecretsManager::new(broken, Arc::new(NoAwsSmObserver));
    assert_eq!(
        kind(provider.get_map("roles/secret", None).await),
        "Forbidden"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_per_key() {
    let Some(moto) = moto() else { return };
    let admin = admin(&moto).await;
    create(&admin, "cached", "c", &[]).await;
    let counter = Arc::new(AwsSmCallCounter::new());
    let clients = AwsSmClients::new(counter.clone());
    let key = AwsSmClientKey {
        store: "SecretStore/default/aws".into(),
        region: REGION.into(),
        endpoint: moto.url().to_owned(),
        ..AwsSmClientKey::default()
    };
    let made = AtomicUsize::new(0);
    let make = || {
        made.fetch_add(1, Ordering::SeqCst);
        Ok(config(&moto))
    };
    let a = clients.get_or_insert_with(&key, make).unwrap();
    let b = clients.get_or_insert_with(&key, make).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(made.load(Ordering::SeqCst), 1);
    let other = AwsSmClientKey {
        store: "SecretStore/default/aws2".into(),
        ..key.clone()
    };
    let c = clients.get_or_insert_with(&other, make).unwrap();
    assert!(!Arc::ptr_eq(&a, &c));
    assert_eq!(clients.len(), 2);
    assert_eq!(
        text(
            a.get_map("cached", None)
                .await
                .unwrap()
                .value(None)
                .unwrap()
        ),
        "c"
    );
    assert_eq!(counter.total(AwsSmCall::GetSecretValue), 1);
    assert!(clients.remove(&other));
    assert_eq!(clients.evict_idle(Duration::ZERO), 1);
    assert!(clients.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_many_batches_like_single_reads() {
    let Some(moto) = moto() else { return };
    let admin = admin(&moto).await;
    let mut keys = Vec::new();
    for i in 0..25 {
        let name = format!("batch/s{i:02}");
        match i {
            0 => {
                admin
                    .create_secret()
                    .name(&name)
                    .secret_binary(Blob::new(vec![0u8, 159, 146, 150]))
                    .send()
                    .await
                    .unwrap();
            }
            1 => create(&admin, &name, "not json", &[]).await,
            _ => {
                create(
                    &admin,
                    &name,
                    &format!(r#"{{"i":{i},"n":{{"s":"v{i}"}}}}"#),
                    &[],
                )
                .await
            }
        }
        keys.push(name);
    }
    create(&admin, "batch/gone", "x", &[]).await;
    admin
        .delete_secret()
        .secret_id("batch/gone")
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();
    let arn = admin
        .describe_secret()
        .secret_id("batch/s05")
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();
    keys.push("batch/missing".into());
    keys.push("batch/gone".into());
    keys.push(arn.clone()); // the same secret as batch/s05, by ARN
    keys.push(arn[..arn.len() - 7].to_owned()); // and by partial ARN
    keys.push("batch/s03".into()); // a duplicate key

    let counter = Arc::new(AwsSmCallCounter::new());
    let provider = AwsSecretsManager::new(config(&moto), counter.clone());
    assert_eq!(provider.batch_size(), 20);
    let many = provider.get_many(&keys).await;
    assert_eq!(many.len(), keys.len());
    // 29 distinct ids → 2 BatchGetSecretValue calls, no single reads.
    assert_eq!(counter.count(AwsSmCall::BatchGetSecretValue, true), 2);
    assert_eq!(counter.total(AwsSmCall::BatchGetSecretValue), 2);
    assert_eq!(counter.total(AwsSmCall::GetSecretValue), 0);

    for (key, batched) in keys.iter().zip(&many) {
        let single = provider.get_map(key, None).await;
        match (batched, single) {
            (Ok(batched), Ok(single)) => {
                assert_eq!(batched.key(), key.as_str());
                assert_eq!(
                    batched.value(None).unwrap().as_bytes(),
                    single.value(None).unwrap().as_bytes(),
                    "{key}"
                );
                assert_eq!(
                    batched.keys().collect::<Vec<_>>(),
                    single.keys().collect::<Vec<_>>()
                );
                for (name, value) in single.iter() {
                    assert_eq!(batched.get(name).unwrap().as_bytes(), value.as_bytes());
                }
            }
            (Err(batched), Err(single)) => {
                assert_eq!(batched.kind(), single.kind(), "{key}");
            }
            (batched, single) => panic!(
                "{key}: batched {:?}, single {:?}",
                batched.as_ref().map(|_| ()),
                single.map(|_| ())
            ),
        }
    }
    assert_eq!(counter.total(AwsSmCall::GetSecretValue), keys.len() as u64);

    let value = |i: usize| text(many[i].as_ref().unwrap().value(None).unwrap());
    assert_eq!(
        many[0].as_ref().unwrap().value(None).unwrap().as_bytes(),
        [0u8, 159, 146, 150]
    );
    assert_eq!(value(1), "not json");
    assert_eq!(value(7), r#"{"i":7,"n":{"s":"v7"}}"#);
    assert_eq!(
        text(many[7].as_ref().unwrap().property("n.s").unwrap()),
        "v7"
    );
    assert!(matches!(&many[25], Err(ProviderError::NotFound { key }) if key == "batch/missing"));
    assert!(matches!(&many[26], Err(ProviderError::NotFound { key }) if key == "batch/gone"));
    assert_eq!(value(27), value(5));
    assert_eq!(value(28), value(5));
    assert_eq!(value(29), value(3));

    // The prefix applies to every id; an empty list makes no call.
    let mut prefixed = config(&moto);
    prefixed.prefix = Some("batch/".into());
    let counter = Arc::new(AwsSmCallCounter::new());
    let prefixed = AwsSecretsManager::new(prefixed, counter.clone());
    let short: Vec<String> = ["s10", "s11", "missing"].map(String::from).into();
    let found = prefixed.get_many(&short).await;
    assert_eq!(
        text(found[0].as_ref().unwrap().property("i").unwrap()),
        "10"
    );
    assert_eq!(
        text(found[1].as_ref().unwrap().property("n.s").unwrap()),
        "v11"
    );
    assert!(matches!(&found[2], Err(ProviderError::NotFound { key }) if key == "missing"));
    assert!(prefixed.get_many(&[]).await.is_empty());
    assert_eq!(counter.total(AwsSmCall::BatchGetSecretValue), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_outages_reach_the_caller_once() {
    let Some(moto) = moto() else { return };
    let admin = admin(&moto).await;
    create(&admin, "fault/a", r#"{"k":"a"}"#, &[]).await;
    create(&admin, "fault/b", r#"{"k":"b"}"#, &[]).await;
    let proxy = FaultProxy::start(moto.url()).await.unwrap();
    let mut through = config(&moto);
    through.endpoint = Some(proxy.url());
    let counter = Arc::new(AwsSmCallCounter::new());
    let provider = AwsSecretsManager::new(through, counter.clone());
    let keys: Vec<String> = ["fault/a", "fault/b", "fault/missing"]
        .map(String::from)
        .into();

    let map = provider.get_map("fault/a", None).await.unwrap();
    assert_eq!(text(map.property("k").unwrap()), "a");

    for (fault, expected) in [
        (Fault::Throttle, "Throttled"),
        (Fault::Unavailable, "Unavailable"),
    ] {
        proxy.set(fault);
        let before = (proxy.requests(), proxy.requests_for(".GetSecretValue"));
        let single = provider.get_map("fault/a", None).await;
        if let Err(ProviderError::Throttled { retry_after, .. }) = &single {
            assert_eq!(*retry_after, None);
        }
        assert_eq!(kind(single), expected);
        assert_eq!(
            proxy.requests(),
            before.0 + 1,
            "one request: SDK retries are off"
        );
        assert_eq!(proxy.requests_for(".GetSecretValue"), before.1 + 1);

        let before = (proxy.requests(), proxy.requests_for("BatchGetSecretValue"));
        let many = provider.get_many(&keys).await;
        assert_eq!(many.len(), 3);
        for result in many {
            assert_eq!(kind(result), expected);
        }
        assert_eq!(
            proxy.requests(),
            before.0 + 1,
            "one request: SDK retries are off"
        );
        assert_eq!(proxy.requests_for("BatchGetSecretValue"), before.1 + 1);

        let before = proxy.requests();
        assert_eq!(kind(provider.validate().await), expected);
        assert_eq!(proxy.requests(), before + 1);
    }
    assert_eq!(counter.count(AwsSmCall::BatchGetSecretValue, false), 2);

    proxy.set(Fault::None);
    let map = provider.get_map("fault/b", None).await.unwrap();
    assert_eq!(text(map.property("k").unwrap()), "b");
    let many = provider.get_many(&keys).await;
    assert_eq!(text(many[0].as_ref().unwrap().property("k").unwrap()), "a");
    assert_eq!(text(many[1].as_ref().unwrap().property("k").unwrap()), "b");
    assert_eq!(
        kind(provider.get_many(&keys[2..]).await.remove(0)),
        "NotFound"
    );
    // Still batched: the faults did not switch the provider to single reads.
    assert_eq!(counter.count(AwsSmCall::BatchGetSecretValue, true), 2);
}
