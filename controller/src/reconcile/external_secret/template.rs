//! `spec.target.template`: ESO's engine v2 (Go text/template with its Sprig functions,
//! `missingkey=error`) over the fetched keys, in ESO's order of precedence: fetched keys
//! (with `mergePolicy: Merge`, or when nothing is templated), then `templateFrom`, then
//! `template.data`; template labels and annotations are templates too.

use std::collections::BTreeMap;

use gitseal_api::{ExternalSecret, ExternalSecretTemplate, TemplateMergePolicy, TemplateScope};
use gitseal_template::{Budget, Options, Template};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, ResourceExt};
use zeroize::Zeroizing;

use super::data::{DataMap, template_options};
use crate::Error;
use crate::reconcile::secret::SecretData;

/// What a template produced: the Secret's data, and its labels and annotations from
/// `templateFrom` targets and `template.metadata`.
#[derive(Default)]
pub struct Rendered {
    /// The Secret's data.
    pub data: DataMap,
    /// Labels rendered by templates.
    pub labels: BTreeMap<String, String>,
    /// Annotations rendered by templates.
    pub annotations: BTreeMap<String, String>,
}

/// Where a `templateFrom` result goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Data,
    Labels,
    Annotations,
}

impl Target {
    fn parse(text: Option<&str>) -> Result<Self, Error> {
        match text.unwrap_or_default().to_ascii_lowercase().as_str() {
            "" | "data" => Ok(Target::Data),
            "labels" => Ok(Target::Labels),
            "annotations" => Ok(Target::Annotations),
            other => Err(Error::Sync(format!(
                "templateFrom target {other:?} is not supported for Secrets (Data, Labels or Annotations)"
            ))),
        }
    }
}

struct Engine<'a> {
    options: Options,
    context: &'a DataMap,
    budget: Budget,
    out: Rendered,
}

impl Engine<'_> {
    fn render(&mut self, name: &str, source: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
        let template = Template::parse_with(name, source, &self.options)
            .map_err(|e| Error::Sync(format!("could not execute template: {e}")))?;
        template
            .render_with_budget(self.context, &mut self.budget)
            .map(|r| r.into_bytes())
            .map_err(|e| Error::Sync(format!("could not execute template: {e}")))
    }

    fn put(&mut self, target: Target, key: String, value: Zeroizing<Vec<u8>>) -> Result<(), Error> {
        match target {
            Target::Data => {
                self.out.data.insert(key, value);
            }
            Target::Labels | Target::Annotations => {
                let text = String::from_utf8(value.to_vec()).map_err(|_| {
                    Error::Sync(format!("the template of {key:?} did not render UTF-8 text"))
                })?;
                let map = if target == Target::Labels {
                    &mut self.out.labels
                } else {
                    &mut self.out.annotations
                };
                map.insert(key, text);
            }
        }
        Ok(())
    }

    /// `templateAs: Values`: `key` gets the rendering of `source`.
    fn values(&mut self, target: Target, key: &str, source: &str) -> Result<(), Error> {
        let value = self.render(key, source)?;
        self.put(target, key.to_owned(), value)
    }

    /// `templateAs: KeysAndValues` (and `literal`): `source` renders a YAML map.
    fn keys_and_values(&mut self, target: Target, source: &str) -> Result<(), Error> {
        let rendered = self.render("literal", source)?;
        let text = std::str::from_utf8(&rendered)
            .map_err(|_| Error::Sync("a KeysAndValues template did not render UTF-8".into()))?;
        let parsed: BTreeMap<String, String> = serde_saphyr::from_str(text).map_err(|_| {
            Error::Sync("a KeysAndValues template did not render a map of strings".into())
        })?;
        for (key, value) in parsed {
            self.put(target, key, Zeroizing::new(value.into_bytes()))?;
        }
        Ok(())
    }
}

/// Applies `es`'s template to `fetched` (`None`: no template, the fetched keys as they
/// are), reading `templateFrom` ConfigMaps and Secrets in `es`'s namespace.
pub async fn apply(
    client: &kube::Client,
    es: &ExternalSecret,
    fetched: DataMap,
    delimiters: (&str, &str),
) -> Result<Rendered, Error> {
    let Some(template) = es.spec.target.template.as_ref() else {
        return Ok(Rendered {
            data: fetched,
            ..Rendered::default()
        });
    };
    let namespace = es.namespace().unwrap_or_default();
    let mut engine = Engine {
        options: template_options(delimiters.0, delimiters.1),
        context: &fetched,
        budget: Budget::new(),
        out: Rendered::default(),
    };
    let nothing_templated = template.data.is_empty() && template.template_from.is_empty();
    if template.merge_policy == TemplateMergePolicy::Merge || nothing_templated {
        engine.out.data = fetched
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
    }
    template_from(client, &namespace, template, &mut engine).await?;
    for (key, source) in &template.data {
        engine.values(Target::Data, key, source)?;
    }
    if let Some(metadata) = &template.metadata {
        for (key, source) in &metadata.labels {
            engine.values(Target::Labels, key, source)?;
        }
        for (key, source) in &metadata.annotations {
            engine.values(Target::Annotations, key, source)?;
        }
    }
    Ok(engine.out)
}

async fn template_from(
    client: &kube::Client,
    namespace: &str,
    template: &ExternalSecretTemplate,
    engine: &mut Engine<'_>,
) -> Result<(), Error> {
    for from in &template.template_from {
        let target = Target::parse(from.target.as_deref())?;
        if let Some(reference) = &from.config_map {
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
            let config_map = api.get(&reference.name).await.map_err(Error::Fetch)?;
            let data = config_map.data.unwrap_or_default();
            for item in &reference.items {
                let source = data.get(&item.key).ok_or_else(|| {
                    Error::Sync(format!(
                        "error in configmap {}: missing key {}",
                        reference.name, item.key
                    ))
                })?;
                match item.template_as {
                    TemplateScope::KeysAndValues => engine.keys_and_values(target, source)?,
                    _ => engine.values(target, &item.key, source)?,
                }
            }
        }
        if let Some(reference) = &from.secret {
            let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
            let secret = SecretData::new(api.get(&reference.name).await.map_err(Error::Fetch)?);
            for item in &reference.items {
                let source = secret
                    .data
                    .as_ref()
                    .and_then(|d| d.get(&item.key))
                    .ok_or_else(|| {
                        Error::Sync(format!(
                            "error in secret {}: missing key {}",
                            reference.name, item.key
                        ))
                    })?;
                let source = std::str::from_utf8(&source.0).map_err(|_| {
                    Error::Sync(format!(
                        "error in secret {}: key {} is not UTF-8 text",
                        reference.name, item.key
                    ))
                })?;
                match item.template_as {
                    TemplateScope::KeysAndValues => engine.keys_and_values(target, source)?,
                    _ => engine.values(target, &item.key, source)?,
                }
            }
        }
        if let Some(literal) = &from.literal {
            engine.keys_and_values(target, literal)?;
        }
    }
    Ok(())
}
