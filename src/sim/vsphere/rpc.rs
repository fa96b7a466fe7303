//! vAPI JSON-RPC 2.0 at `POST /api`: the transport of the vSphere Automation SDK's default
//! client (`vmware/vapi/vsphere/client.py`: `JSON_RPC_ENDPOINT = '/api'`, message protocol
//! `json`), for the session and VM services sextant simulates.
//!
//! Wire format, from the SDK's runtime (`vmware/vapi/protocol/client/msg/json_connector.py`,
//! `vmware/vapi/data/serializers/jsonrpc.py`): a request is
//! `{"jsonrpc": "2.0", "method": "invoke", "id": …, "params": {"serviceId", "operationId",
//! "input", "ctx": {"appCtx", "securityCtx"}}}`; data values are typed JSON —
//! `{"STRUCTURE": {"<struct name>": {fields}}}`, `{"OPTIONAL": value|null}`,
//! `{"SECRET": "…"}`, lists as arrays, maps as lists of `map-entry` structures, enums and ids
//! as strings; the reply is `{"jsonrpc": "2.0", "id", "result": {"output": value}}` or
//! `{"result": {"error": {"ERROR": {"com.vmware.vapi.std.errors.<kind>": {fields}}}}}`.
//! Credentials travel in `securityCtx`: `schemeId` `com.vmware.vapi.std.security.user_pass`
//! (`userName`, `password`) to create a session, `…session_id` (`sessionId`) after.
//! Services, operations, struct names and which fields are optional: the bindings
//! (`com/vmware/cis_client.py`, `com/vmware/vcenter_client.py`,
//! `com/vmware/vcenter/vm_client.py`, `…/vm/guest_client.py`, `…/vm/hardware_client.py`).

use std::collections::BTreeMap;

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{
    CpuUpdate, Flavor, MemoryUpdate, Refusal, SimRef, VmRecord, change_guest_power,
    change_hardware, change_power, cpu_info, guest_power_info, memory_info, power_info, refusal,
    select_vms, vm_info,
};

const USER_PASS: &str = "com.vmware.vapi.std.security.user_pass";
const SESSION_ID: &str = "com.vmware.vapi.std.security.session_id";

/// Serves one JSON-RPC request body.
pub async fn serve(sim: &SimRef, body: &[u8]) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return rpc_error(Value::Null, -32700, "Parse error.");
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    if request.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return rpc_error(id, -32600, "Invalid Request.");
    }
    if request.get("method").and_then(Value::as_str) != Some("invoke") {
        return rpc_error(id, -32601, "Method not found.");
    }
    let params = &request["params"];
    let (Some(service), Some(operation)) = (
        params.get("serviceId").and_then(Value::as_str),
        params.get("operationId").and_then(Value::as_str),
    ) else {
        return rpc_error(id, -32602, "Invalid params.");
    };
    let input = operation_input(&params["input"]);
    let security = &params["ctx"]["securityCtx"];
    let result = match invoke(sim, service, operation, &input, security).await {
        Ok(output) => json!({ "output": output }),
        Err((kind, message)) => json!({ "error": error_value(&kind, &message) }),
    };
    Json(json!({ "jsonrpc": "2.0", "id": id, "result": result })).into_response()
}

fn rpc_error(id: Value, code: i64, message: &str) -> Response {
    Json(json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": code, "message": message },
    }))
    .into_response()
}

/// A vAPI standard error (`com/vmware/vapi/std/errors_client.py`).
fn error_value(kind: &str, message: &str) -> Value {
    let messages = json!([structure(
        "com.vmware.vapi.std.localizable_message",
        json!({
            "id": format!("vapi.std.errors.{kind}"),
            "default_message": message,
            "args": [],
        }),
    )]);
    json!({
        "ERROR": {
            format!("com.vmware.vapi.std.errors.{kind}"): {
                "messages": messages,
                "data": { "OPTIONAL": null },
                "error_type": { "OPTIONAL": kind.to_uppercase() },
            }
        }
    })
}

fn structure(name: &str, fields: Value) -> Value {
    json!({ "STRUCTURE": { name: fields } })
}

fn optional(value: Option<Value>) -> Value {
    json!({ "OPTIONAL": value })
}

/// The fields of a `{"STRUCTURE": {name: fields}}` value.
fn fields_of(value: &Value) -> Option<&Map<String, Value>> {
    value
        .get("STRUCTURE")?
        .as_object()?
        .values()
        .next()?
        .as_object()
}

/// The fields of the operation's input structure (`operation-input`).
fn operation_input(input: &Value) -> Map<String, Value> {
    fields_of(input).cloned().unwrap_or_default()
}

/// An `{"OPTIONAL": …}` value: `None` when unset or absent.
fn unset_or(value: Option<&Value>) -> Option<&Value> {
    match value?.get("OPTIONAL") {
        Some(Value::Null) => None,
        Some(inner) => Some(inner),
        // A field sent without its wrapper.
        None => value.filter(|v| !v.is_null()),
    }
}

fn invalid(message: impl Into<String>) -> Refusal {
    refusal("invalid_argument", message.into())
}

fn vm_id(input: &Map<String, Value>) -> Result<String, Refusal> {
    input
        .get("vm")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| invalid("the `vm` parameter is required"))
}

async fn invoke(
    sim: &SimRef,
    service: &str,
    operation: &str,
    input: &Map<String, Value>,
    security: &Value,
) -> Result<Value, Refusal> {
    if (service, operation) == ("com.vmware.cis.session", "create") {
        return create_session(sim, security).await;
    }
    let session = session_of(sim, security).await?;
    match (service, operation) {
        ("com.vmware.cis.session", "get") => read_session(sim, &session).await,
        ("com.vmware.cis.session", "delete") => {
            let mut state = sim.state.lock().await;
            state.vsphere.sessions.remove(&session);
            sim.persist(&mut state);
            Ok(Value::Null)
        }
        ("com.vmware.vcenter.VM", "list") => list(sim, input).await,
        ("com.vmware.vcenter.VM", "get") => {
            read_vm(sim, input, |vm| typed(&vm_info(vm, Flavor::Api), VM_INFO)).await
        }
        ("com.vmware.vcenter.vm.power", "get") => {
            read_vm(sim, input, |vm| {
                let info = power_info(vm, Flavor::Api);
                structure(
                    "com.vmware.vcenter.vm.power.info",
                    json!({
                        "state": info["state"],
                        "clean_power_off": optional(info.get("clean_power_off").cloned()),
                    }),
                )
            })
            .await
        }
        ("com.vmware.vcenter.vm.power", op @ ("start" | "stop" | "suspend" | "reset")) => {
            change_vm(sim, input, |sim, record| {
                change_power(sim, record, op).map(|()| true)
            })
            .await
        }
        ("com.vmware.vcenter.vm.guest.power", "get") => {
            read_vm(sim, input, |vm| {
                structure(
                    "com.vmware.vcenter.vm.guest.power.info",
                    guest_power_info(vm, Flavor::Api),
                )
            })
            .await
        }
        ("com.vmware.vcenter.vm.guest.power", action @ ("shutdown" | "reboot" | "standby")) => {
            change_vm(sim, input, |sim, record| {
                change_guest_power(sim, record, action)
            })
            .await
        }
        ("com.vmware.vcenter.vm.hardware.cpu", "get") => {
            read_vm(sim, input, |vm| {
                structure("com.vmware.vcenter.vm.hardware.cpu.info", cpu_info(vm))
            })
            .await
        }
        ("com.vmware.vcenter.vm.hardware.cpu", "update") => {
            let spec = cpu_update(input)?;
            change_vm(sim, input, |sim, record| {
                change_hardware(sim, record, &spec)
            })
            .await
        }
        ("com.vmware.vcenter.vm.hardware.memory", "get") => {
            read_vm(sim, input, |vm| {
                let info = memory_info(vm);
                structure(
                    "com.vmware.vcenter.vm.hardware.memory.info",
                    json!({
                        "size_MiB": info["size_MiB"],
                        "hot_add_enabled": info["hot_add_enabled"],
                        "hot_add_increment_size_MiB":
                            optional(info.get("hot_add_increment_size_MiB").cloned()),
                        "hot_add_limit_MiB": optional(info.get("hot_add_limit_MiB").cloned()),
                    }),
                )
            })
            .await
        }
        ("com.vmware.vcenter.vm.hardware.memory", "update") => {
            let spec = memory_update(input)?;
            change_vm(sim, input, |sim, record| {
                change_hardware(sim, record, &spec)
            })
            .await
        }
        _ => Err(refusal(
            "operation_not_found",
            format!("operation `{operation}` of service `{service}` is not available"),
        )),
    }
}

/// `Session.create` with a `user_pass` security context → the session id as a secret.
async fn create_session(sim: &SimRef, security: &Value) -> Result<Value, Refusal> {
    let unauthenticated = || refusal("unauthenticated", "Authentication required.".to_owned());
    if security.get("schemeId").and_then(Value::as_str) != Some(USER_PASS) {
        return Err(unauthenticated());
    }
    let user = security.get("userName").and_then(Value::as_str);
    let password = security.get("password").and_then(Value::as_str);
    let (Some(user), Some(password)) = (user, password) else {
        return Err(unauthenticated());
    };
    if !(sim.credential_accepted(user) && sim.credential_accepted(password)) {
        return Err(unauthenticated());
    }
    let id = super::open_session(sim, user).await;
    Ok(json!({ "SECRET": id }))
}

/// The session a `session_id` security context names, touching its last-access time.
async fn session_of(sim: &SimRef, security: &Value) -> Result<String, Refusal> {
    let unauthenticated = || refusal("unauthenticated", super::UNAUTHENTICATED.to_owned());
    if security.get("schemeId").and_then(Value::as_str) != Some(SESSION_ID) {
        return Err(unauthenticated());
    }
    let id = security
        .get("sessionId")
        .and_then(Value::as_str)
        .ok_or_else(unauthenticated)?;
    let now = sim.clock.now();
    let mut state = sim.state.lock().await;
    let session = state
        .vsphere
        .sessions
        .get_mut(id)
        .ok_or_else(unauthenticated)?;
    session.last_accessed_time = now;
    Ok(id.to_owned())
}

fn date_time(time: &chrono::DateTime<chrono::Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

async fn read_session(sim: &SimRef, id: &str) -> Result<Value, Refusal> {
    let state = sim.state.lock().await;
    let session = state
        .vsphere
        .sessions
        .get(id)
        .ok_or_else(|| refusal("unauthenticated", super::UNAUTHENTICATED.to_owned()))?;
    Ok(structure(
        "com.vmware.cis.session.info",
        json!({
            "user": session.user,
            "created_time": date_time(&session.created_time),
            "last_accessed_time": date_time(&session.last_accessed_time),
        }),
    ))
}

/// `VM.list(filter)`: every set in `VM.FilterSpec` that is set narrows the listing.
async fn list(sim: &SimRef, input: &Map<String, Value>) -> Result<Value, Refusal> {
    let filter = unset_or(input.get("filter")).and_then(fields_of);
    let mut filters: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, value) in filter.into_iter().flatten() {
        if let Some(values) = unset_or(Some(value)).and_then(Value::as_array) {
            filters
                .entry(name.as_str())
                .or_default()
                .extend(values.iter().filter_map(Value::as_str));
        }
    }
    let now = sim.clock.now();
    let mut state = sim.state.lock().await;
    let mut settled = false;
    for vm in state.vsphere.vms.values_mut() {
        settled |= vm.settle(now);
    }
    if settled {
        sim.persist(&mut state);
    }
    let cap = sim.options().vsphere_api_list_cap;
    let found = select_vms(&state.vsphere, &filters, cap)?;
    Ok(Value::Array(
        found
            .into_iter()
            .map(|vm| {
                structure(
                    "com.vmware.vcenter.VM.summary",
                    json!({
                        "vm": vm.vm,
                        "name": vm.name,
                        "power_state": vm.power_state,
                        "cpu_count": optional(Some(json!(vm.cpu_count))),
                        "memory_size_MiB": optional(Some(json!(vm.memory_size_mib))),
                    }),
                )
            })
            .collect(),
    ))
}

async fn read_vm(
    sim: &SimRef,
    input: &Map<String, Value>,
    view: impl FnOnce(&VmRecord) -> Value,
) -> Result<Value, Refusal> {
    let mut output = Value::Null;
    change_vm(sim, input, |_, record| {
        output = view(record);
        Ok(false)
    })
    .await?;
    Ok(output)
}

fn not_found(vm: &str) -> Refusal {
    refusal(
        "not_found",
        format!("virtual machine with identifier `{vm}` does not exist"),
    )
}

/// Runs `change` on the VM the input names (after settling a finished guest shutdown);
/// void output.
async fn change_vm(
    sim: &SimRef,
    input: &Map<String, Value>,
    change: impl FnOnce(&SimRef, &mut VmRecord) -> Result<bool, Refusal>,
) -> Result<Value, Refusal> {
    let vm = vm_id(input)?;
    let now = sim.clock.now();
    let mut state = sim.state.lock().await;
    let record = state
        .vsphere
        .vms
        .get_mut(&vm)
        .ok_or_else(|| not_found(&vm))?;
    let settled = record.settle(now);
    let result = change(sim, record);
    if settled || matches!(result, Ok(true)) {
        sim.persist(&mut state);
    }
    result.map(|_| Value::Null)
}

fn spec_fields(input: &Map<String, Value>) -> Result<&Map<String, Value>, Refusal> {
    input
        .get("spec")
        .and_then(fields_of)
        .ok_or_else(|| invalid("the `spec` parameter is required"))
}

fn int_field(fields: &Map<String, Value>, name: &str) -> Option<i64> {
    unset_or(fields.get(name)).and_then(Value::as_i64)
}

fn bool_field(fields: &Map<String, Value>, name: &str) -> Option<bool> {
    unset_or(fields.get(name)).and_then(Value::as_bool)
}

/// `Cpu.UpdateSpec`.
fn cpu_update(input: &Map<String, Value>) -> Result<CpuUpdate, Refusal> {
    let fields = spec_fields(input)?;
    Ok(CpuUpdate {
        count: int_field(fields, "count"),
        cores_per_socket: int_field(fields, "cores_per_socket"),
        hot_add_enabled: bool_field(fields, "hot_add_enabled"),
        hot_remove_enabled: bool_field(fields, "hot_remove_enabled"),
    })
}

/// `Memory.UpdateSpec`.
fn memory_update(input: &Map<String, Value>) -> Result<MemoryUpdate, Refusal> {
    let fields = spec_fields(input)?;
    Ok(MemoryUpdate {
        size_mib: int_field(fields, "size_MiB"),
        hot_add_enabled: bool_field(fields, "hot_add_enabled"),
    })
}

/// One structure of `VM.Info` as the bindings declare it: its name, its optional fields,
/// its map fields and the structures its fields hold.
struct Shape {
    name: &'static str,
    optional: &'static [&'static str],
    maps: &'static [&'static str],
    children: &'static [(&'static str, &'static Shape)],
}

const SCSI_ADDRESS: &Shape = &Shape {
    name: "com.vmware.vcenter.vm.hardware.scsi_address_info",
    optional: &[],
    maps: &[],
    children: &[],
};
const SATA_ADDRESS: &Shape = &Shape {
    name: "com.vmware.vcenter.vm.hardware.sata_address_info",
    optional: &[],
    maps: &[],
    children: &[],
};
const DISK: &Shape = &Shape {
    name: "com.vmware.vcenter.vm.hardware.disk.info",
    optional: &["ide", "scsi", "sata", "nvme", "capacity"],
    maps: &[],
    children: &[
        ("scsi", SCSI_ADDRESS),
        ("sata", SATA_ADDRESS),
        (
            "backing",
            &Shape {
                name: "com.vmware.vcenter.vm.hardware.disk.backing_info",
                optional: &["vmdk_file"],
                maps: &[],
                children: &[],
            },
        ),
    ],
};
const NIC: &Shape = &Shape {
    name: "com.vmware.vcenter.vm.hardware.ethernet.info",
    optional: &[
        "upt_compatibility_enabled",
        "upt_v2_compatibility_enabled",
        "mac_address",
        "pci_slot_number",
    ],
    maps: &[],
    children: &[(
        "backing",
        &Shape {
            name: "com.vmware.vcenter.vm.hardware.ethernet.backing_info",
            optional: &[
                "network",
                "network_name",
                "host_device",
                "distributed_switch_uuid",
                "distributed_port",
                "connection_cookie",
                "opaque_network_type",
                "opaque_network_id",
            ],
            maps: &[],
            children: &[],
        },
    )],
};
const CDROM: &Shape = &Shape {
    name: "com.vmware.vcenter.vm.hardware.cdrom.info",
    optional: &["ide", "sata"],
    maps: &[],
    children: &[
        ("sata", SATA_ADDRESS),
        (
            "backing",
            &Shape {
                name: "com.vmware.vcenter.vm.hardware.cdrom.backing_info",
                optional: &[
                    "iso_file",
                    "host_device",
                    "auto_detect",
                    "device_access_type",
                ],
                maps: &[],
                children: &[],
            },
        ),
    ],
};
const VM_INFO: &Shape = &Shape {
    name: "com.vmware.vcenter.VM.info",
    optional: &["identity", "instant_clone_frozen", "nvme_adapters"],
    maps: &[
        "disks",
        "nics",
        "cdroms",
        "floppies",
        "parallel_ports",
        "serial_ports",
        "sata_adapters",
        "scsi_adapters",
    ],
    children: &[
        (
            "identity",
            &Shape {
                name: "com.vmware.vcenter.vm.identity.info",
                optional: &[],
                maps: &[],
                children: &[],
            },
        ),
        (
            "hardware",
            &Shape {
                name: "com.vmware.vcenter.vm.hardware.info",
                optional: &["upgrade_version", "upgrade_error"],
                maps: &[],
                children: &[],
            },
        ),
        (
            "boot",
            &Shape {
                name: "com.vmware.vcenter.vm.hardware.boot.info",
                optional: &["efi_legacy_boot", "network_protocol"],
                maps: &[],
                children: &[],
            },
        ),
        (
            "boot_devices",
            &Shape {
                name: "com.vmware.vcenter.vm.hardware.boot.device.entry",
                optional: &["nic", "disks"],
                maps: &[],
                children: &[],
            },
        ),
        (
            "cpu",
            &Shape {
                name: "com.vmware.vcenter.vm.hardware.cpu.info",
                optional: &[],
                maps: &[],
                children: &[],
            },
        ),
        (
            "memory",
            &Shape {
                name: "com.vmware.vcenter.vm.hardware.memory.info",
                optional: &["hot_add_increment_size_MiB", "hot_add_limit_MiB"],
                maps: &[],
                children: &[],
            },
        ),
        ("disks", DISK),
        ("nics", NIC),
        ("cdroms", CDROM),
        // `floppies`, `parallel_ports` and `serial_ports` are empty maps here.
        (
            "sata_adapters",
            &Shape {
                name: "com.vmware.vcenter.vm.hardware.adapter.sata.info",
                optional: &["pci_slot_number"],
                maps: &[],
                children: &[],
            },
        ),
        (
            "scsi_adapters",
            &Shape {
                name: "com.vmware.vcenter.vm.hardware.adapter.scsi.info",
                optional: &["pci_slot_number"],
                maps: &[],
                children: &[("scsi", SCSI_ADDRESS)],
            },
        ),
    ],
};

/// Plain JSON of a structure (maps as objects) → its typed data value.
fn typed(value: &Value, shape: &Shape) -> Value {
    let Some(object) = value.as_object() else {
        return value.clone();
    };
    let mut fields = Map::new();
    for (name, field) in object {
        let child = shape
            .children
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| *s);
        let inner = if shape.maps.contains(&name.as_str()) {
            let entries = field.as_object().cloned().unwrap_or_default();
            Value::Array(
                entries
                    .iter()
                    .map(|(key, value)| {
                        let value = child.map_or_else(|| value.clone(), |s| typed(value, s));
                        structure("map-entry", json!({ "key": key, "value": value }))
                    })
                    .collect(),
            )
        } else {
            match (child, field) {
                (Some(shape), Value::Array(items)) => {
                    Value::Array(items.iter().map(|item| typed(item, shape)).collect())
                }
                (Some(shape), Value::Object(_)) => typed(field, shape),
                _ => field.clone(),
            }
        };
        let inner = if shape.optional.contains(&name.as_str()) {
            optional(Some(inner))
        } else {
            inner
        };
        fields.insert(name.clone(), inner);
    }
    structure(shape.name, Value::Object(fields))
}
