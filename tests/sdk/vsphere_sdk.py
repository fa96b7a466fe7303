"""The vSphere Automation SDK (vmware-vcenter, vmware-vapi-runtime) against `sextant sim serve`.

Usage: vsphere_sdk.py HOST:PORT                 every call below
       vsphere_sdk.py smoke HOST:PORT...       a session, a listing and a VM per server
       vsphere_sdk.py tools HOST:PORT VM       guest shutdown of a VM without VMware Tools

Uses the SDK's default client, `create_vsphere_client`, unchanged: it speaks vAPI JSON-RPC
at `https://HOST:PORT/api`; the only setting is a requests session that sends those
requests over plain HTTP, since the simulator has no TLS. Exits nonzero (with a traceback)
on the first failed assertion.
"""

import sys
import time

import requests
from com.vmware.vapi.std.errors_client import (
    AlreadyInDesiredState,
    InvalidArgument,
    NotAllowedInCurrentState,
    NotFound,
    ServiceUnavailable,
    Unauthenticated,
)
from com.vmware.vcenter_client import VM
from vmware.vapi.vsphere.client import create_vsphere_client

USER = "administrator@vsphere.local"
PASSWORD = "vsphere-password"


class PlainHttp(requests.adapters.HTTPAdapter):
    """Sends the client's https:// requests to the simulator's plain-HTTP port."""

    def send(self, request, **kwargs):
        request.url = request.url.replace("https://", "http://", 1)
        return super().send(request, **kwargs)


def session_for(server):
    session = requests.Session()
    # The longest mounted prefix wins over the SDK's own `https://` adapter.
    session.mount("https://" + server, PlainHttp())
    return session


def raises(error, call, *args):
    try:
        call(*args)
    except error as err:
        return err
    raise AssertionError(f"{call.__qualname__}{args} did not raise {error.__name__}")


def main(server):
    client = create_vsphere_client(
        server=server, username=USER, password=PASSWORD, session=session_for(server)
    )
    vcenter = client.vcenter
    power = vcenter.vm.Power
    guest_power = vcenter.vm.guest.Power
    cpu = vcenter.vm.hardware.Cpu
    memory = vcenter.vm.hardware.Memory

    # Session.
    info = client.session_svc.get()
    assert info.user == USER, info

    # VM list: all, then filtered by name and by power state.
    everything = {vm.name: vm for vm in vcenter.VM.list()}
    assert set(everything) == {"web-01", "web-02", "db-01"}, everything
    web = everything["web-01"]
    assert web.power_state == power.State.POWERED_ON, web
    assert (web.cpu_count, web.memory_size_mib) == (2, 4096), web
    named = vcenter.VM.list(VM.FilterSpec(names={"web-01"}))
    assert [vm.vm for vm in named] == [web.vm], named
    off = vcenter.VM.list(VM.FilterSpec(power_states={power.State.POWERED_OFF}))
    assert [vm.name for vm in off] == ["db-01"], off

    # VM get: the whole VM.Info.
    vm = vcenter.VM.get(web.vm)
    assert vm.name == "web-01" and vm.power_state == power.State.POWERED_ON, vm
    assert vm.cpu.count == 2 and vm.memory.size_mib == 4096, vm
    assert vm.guest_os is not None and vm.hardware.version is not None, vm
    assert vm.boot.retry is False and vm.boot.retry_delay >= 0, vm.boot
    assert vm.identity.name == "web-01" and vm.identity.instance_uuid, vm.identity
    assert len(vm.disks) == 1 and len(vm.nics) == 1 and len(vm.cdroms) == 1, vm
    assert vm.floppies == {} and vm.serial_ports == {} and vm.parallel_ports == {}, vm
    assert len(vm.scsi_adapters) == 1 and len(vm.sata_adapters) == 1, vm
    disk = next(iter(vm.disks.values()))
    assert disk.capacity > 0 and disk.backing.vmdk_file, disk
    assert vm.boot_devices[0].disks == list(vm.disks), vm.boot_devices

    # Power: stop, stop again, start, suspend, start.
    power.stop(web.vm)
    state = power.get(web.vm)
    assert state.state == power.State.POWERED_OFF and state.clean_power_off is True, state
    raises(AlreadyInDesiredState, power.stop, web.vm)
    raises(NotAllowedInCurrentState, power.suspend, web.vm)
    power.start(web.vm)
    power.suspend(web.vm)
    assert power.get(web.vm).state == power.State.SUSPENDED
    raises(NotAllowedInCurrentState, guest_power.shutdown, web.vm)
    power.start(web.vm)

    # CPU and memory: refused on a running VM without hot-add, accepted once it is off.
    raises(InvalidArgument, cpu.update, web.vm, cpu.UpdateSpec(count=4))
    db = everything["db-01"].vm
    cpu.update(db, cpu.UpdateSpec(count=8))
    memory.update(db, memory.UpdateSpec(size_mib=16384))
    assert cpu.get(db).count == 8
    assert memory.get(db).size_mib == 16384
    assert vcenter.VM.get(db).cpu.count == 8

    # Guest shutdown: returns at once; the VM powers off when the guest is done.
    guest_power.shutdown(web.vm)
    assert guest_power.get(web.vm).state == guest_power.State.SHUTTING_DOWN
    deadline = time.monotonic() + 30
    while power.get(web.vm).state != power.State.POWERED_OFF:
        assert time.monotonic() < deadline, "the guest never shut down"
        time.sleep(0.1)
    assert power.get(web.vm).clean_power_off is True
    raises(AlreadyInDesiredState, guest_power.shutdown, web.vm)

    # NotFound.
    raises(NotFound, vcenter.VM.get, "vm-404")
    raises(NotFound, power.start, "vm-404")

    # Unauthenticated: an unknown session, and a session after it was deleted.
    stranger = create_vsphere_client(
        server=server, session_id="not-a-session", session=session_for(server)
    )
    raises(Unauthenticated, stranger.vcenter.VM.list)
    client.session_svc.delete()
    raises(Unauthenticated, vcenter.VM.list)
    print("vsphere sdk: ok")


def tools_not_running(server, vm):
    """Guest shutdown of a VM without VMware Tools: ServiceUnavailable."""
    client = create_vsphere_client(
        server=server, username=USER, password=PASSWORD, session=session_for(server)
    )
    raises(ServiceUnavailable, client.vcenter.vm.guest.Power.shutdown, vm)
    print("vsphere sdk tools: ok")


def smoke(server):
    """A session, a listing and a VM: what every server must answer whatever else it serves."""
    client = create_vsphere_client(
        server=server, username=USER, password=PASSWORD, session=session_for(server)
    )
    names = sorted(vm.name for vm in client.vcenter.VM.list())
    assert names == ["db-01", "web-01", "web-02"], names
    assert client.vcenter.VM.get("vm-1001").name == "web-01"
    client.session_svc.delete()
    print(f"vsphere sdk smoke {server}: ok")


if __name__ == "__main__":
    if sys.argv[1] == "smoke":
        for each in sys.argv[2:]:
            smoke(each)
    elif sys.argv[1] == "tools":
        tools_not_running(sys.argv[2], sys.argv[3])
    else:
        main(sys.argv[1])
