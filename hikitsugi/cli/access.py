"""Access commands on the main ``hikitsugi`` app: ``keys``, ``staff``, ``grants``, ``audit``.

Whoever can run these can read the database file anyway, so the CLI needs no key; every
change it makes is audited as ``cli:<OS user>``. A key is printed once, on stdout, when
it is created; only its hash is stored.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
from typing import Optional

import typer

from hikitsugi.cli.common import _err, app
from hikitsugi.config import get_settings

keys_app = typer.Typer(no_args_is_help=True, help="API keys (stored hashed, shown once).")
staff_app = typer.Typer(no_args_is_help=True, help="Which staff user is in charge of which customer.")
grants_app = typer.Typer(no_args_is_help=True, help="Handover grants: a successor's access for a period.")
app.add_typer(keys_app, name="keys")
app.add_typer(staff_app, name="staff")
app.add_typer(grants_app, name="grants")


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in a bare container
        return "cli"


def _session():
    from hikitsugi.storage.database import session_for

    return session_for(get_settings().db_url)


def _today() -> str:
    from hikitsugi.access.policy import today

    return today(get_settings().timezone)


def _customer(session, value: str) -> str:
    """Customer id, name or alias → the key assignments use; warns when no record knows it."""
    from hikitsugi.access import policy as access

    cat = access.catalog(session, get_settings().db_url, None)
    key = cat.customer_key(value)
    if key not in cat.customers:
        _err(f"note: no customer record for '{value}'; using the name '{key}' (documents with that customer name)")
    return key


def _date(value: str, option: str) -> str:
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        _err(f"error: {option} must be a date YYYY-MM-DD, not '{value}'")
        raise typer.Exit(2)


@keys_app.command("create")
def keys_create(
    user: str = typer.Option(..., help="Staff user the key belongs to."),
    role: str = typer.Option("agent", help="agent | lead | admin"),
    label: Optional[str] = typer.Option(None, help="What the key is for (e.g. 'support tool backend')."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Create a key and print it once. Store it now: it cannot be shown again."""
    from hikitsugi.access.principals import create_key

    session = _session()
    try:
        row, plain = create_key(session, user, role, label, created_by=_actor())
    except ValueError as exc:
        _err(f"error: {exc}")
        raise typer.Exit(2)
    finally:
        session.close()
    if as_json:
        typer.echo(json.dumps({"key_id": row.key_id, "user": row.user, "role": row.role, "key": plain}))
    else:
        _err(f"key {row.key_id} for {row.user} ({row.role}); shown once, store it now:")
        typer.echo(plain)


@keys_app.command("list")
def keys_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """Keys with their user, role and state (never the key itself)."""
    from hikitsugi.access.principals import list_keys

    session = _session()
    try:
        rows = [{"key_id": k.key_id, "user": k.user, "role": k.role, "label": k.label,
                 "created_at": k.created_at.isoformat()[:19], "revoked": k.revoked_at is not None}
                for k in list_keys(session)]
    finally:
        session.close()
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for r in rows:
        typer.echo(f"{r['key_id']}  {r['user']:<16} {r['role']:<6} {'revoked' if r['revoked'] else 'active ':<8}"
                   f" {r['created_at']}  {r['label'] or ''}")


@keys_app.command("revoke")
def keys_revoke(key_id: str = typer.Argument(..., help="The key id (from `keys list`).")) -> None:
    """Revoke a key at once (and every token it issued)."""
    from hikitsugi.access.principals import revoke_key

    session = _session()
    try:
        ok = revoke_key(session, key_id, by=_actor())
    finally:
        session.close()
    if not ok:
        _err(f"error: no active key '{key_id}'")
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


@staff_app.command("assign")
def staff_assign(
    user: str = typer.Option(..., help="Staff user."),
    customer: str = typer.Option(..., help="Customer id (C001), name or alias."),
    until: Optional[str] = typer.Option(None, help="Last day of the assignment (YYYY-MM-DD); default: open-ended."),
) -> None:
    """Put a staff user in charge of a customer: they see its full record."""
    from hikitsugi.access.principals import assign

    until = _date(until, "--until") if until else None
    session = _session()
    try:
        key = _customer(session, customer)
        assign(session, user, key, by=_actor(), until=until)
    finally:
        session.close()
    typer.echo(f"{user} → {key}" + (f" until {until}" if until else ""))


@staff_app.command("unassign")
def staff_unassign(user: str = typer.Option(...), customer: str = typer.Option(...)) -> None:
    """End an assignment now."""
    from hikitsugi.access.principals import unassign

    session = _session()
    try:
        key = _customer(session, customer)
        ok = unassign(session, user, key, by=_actor())
    finally:
        session.close()
    if not ok:
        _err(f"error: {user} is not assigned to {key}")
        raise typer.Exit(1)
    typer.echo(f"{user} ✕ {key}")


@staff_app.command("list")
def staff_list(user: Optional[str] = typer.Option(None, help="Only this user."),
               as_json: bool = typer.Option(False, "--json")) -> None:
    """Assignments, and what each user sees fully today (assignments + live grants)."""
    from hikitsugi.access.principals import list_assignments, visible_customers

    today = _today()
    session = _session()
    try:
        rows = list_assignments(session, user)
        users = sorted({r.user for r in rows} | ({user} if user else set()))
        visible = {u: sorted(visible_customers(session, u, today)) for u in users}
    finally:
        session.close()
    data = [{"user": r.user, "customer": r.customer, "valid_until": r.valid_until,
             "active": r.valid_until is None or r.valid_until >= today} for r in rows]
    if as_json:
        typer.echo(json.dumps({"assignments": data, "visible_today": visible}, ensure_ascii=False, indent=2))
        return
    for d in data:
        typer.echo(f"{d['user']:<16} {d['customer']:<12} until {d['valid_until'] or '-':<10} "
                   f"{'' if d['active'] else '(ended)'}")
    for u, cs in visible.items():
        typer.echo(f"{u} sees fully today: {', '.join(cs) or '(basic part only)'}")


@grants_app.command("add")
def grants_add(
    from_user: str = typer.Option(..., "--from", help="Predecessor (their access ends on --until)."),
    to_user: str = typer.Option(..., "--to", help="Successor (sees the customer fully until --until)."),
    customer: str = typer.Option(..., help="Customer id, name or alias."),
    until: str = typer.Option(..., help="Last day of the handover (YYYY-MM-DD), inclusive."),
    reason: Optional[str] = typer.Option(None, help="Why (e.g. 担当交代)."),
) -> None:
    """Hand a customer over: the successor sees it fully until the date; the grant then
    expires by itself, and the predecessor's assignment ends on the same date."""
    from hikitsugi.access.principals import add_grant

    until = _date(until, "--until")
    session = _session()
    try:
        key = _customer(session, customer)
        grant = add_grant(session, from_user, to_user, key, until, _today(), by=_actor(), reason=reason)
    except ValueError as exc:
        _err(f"error: {exc}")
        raise typer.Exit(2)
    finally:
        session.close()
    typer.echo(f"grant {grant.id}: {to_user} sees {key} until {until}; {from_user}'s access ends {until}")


@grants_app.command("list")
def grants_list(all_: bool = typer.Option(False, "--all", help="Also expired and revoked grants."),
                as_json: bool = typer.Option(False, "--json")) -> None:
    """Handover grants (active ones by default)."""
    from hikitsugi.access.principals import list_grants

    today = _today()
    session = _session()
    try:
        rows = [g.to_dict(today) for g in list_grants(session, today, active_only=not all_)]
    finally:
        session.close()
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for g in rows:
        typer.echo(f"{g['id']:>4}  {g['from']} → {g['to']}  {g['customer']}  {g['valid_from']}〜{g['valid_until']}"
                   f"  {g['state']}  {g['reason'] or ''}")


@grants_app.command("revoke")
def grants_revoke(grant_id: int = typer.Argument(...)) -> None:
    """End a grant now (the successor loses access at once)."""
    from hikitsugi.access.principals import revoke_grant

    session = _session()
    try:
        grant = revoke_grant(session, grant_id, by=_actor())
    finally:
        session.close()
    if grant is None:
        _err(f"error: no active grant {grant_id}")
        raise typer.Exit(1)
    typer.echo(f"revoked grant {grant_id} ({grant.to_user} ✕ {grant.customer})")


@app.command("audit")
def audit(
    actor: Optional[str] = typer.Option(None, help="Only this staff user (or cli:<name>)."),
    action: Optional[str] = typer.Option(None, help="read, grant.add, grant.revoke, assign, key.create, …"),
    target: Optional[str] = typer.Option(None, help="Prefix, e.g. customer:C001 or document:"),
    since: Optional[str] = typer.Option(None, help="From this date/time (YYYY-MM-DD[THH:MM])."),
    until: Optional[str] = typer.Option(None, help="Up to this date/time."),
    limit: int = typer.Option(100, min=1, max=100000),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The audit log, newest first: every sensitive read and every access change."""
    from zoneinfo import ZoneInfo

    from hikitsugi.access.audit import query

    tz = ZoneInfo(get_settings().timezone)

    def when(value: Optional[str], option: str, end: bool) -> Optional[dt.datetime]:
        if not value:
            return None
        try:
            d = dt.datetime.fromisoformat(value)
        except ValueError:
            _err(f"error: {option} must be YYYY-MM-DD or YYYY-MM-DDTHH:MM, not '{value}'")
            raise typer.Exit(2)
        if end and len(value) <= 10:
            d += dt.timedelta(days=1) - dt.timedelta(microseconds=1)
        return (d if d.tzinfo else d.replace(tzinfo=tz)).astimezone(dt.timezone.utc)

    session = _session()
    try:
        rows = [r.to_dict() for r in query(session, actor=actor, action=action, target=target,
                                           since=when(since, "--since", False), until=when(until, "--until", True),
                                           limit=limit)]
    finally:
        session.close()
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for r in rows:
        at = dt.datetime.fromisoformat(r["at"]).astimezone(tz).isoformat(timespec="seconds")
        typer.echo(f"{at}  {r['actor']:<16} {r['action']:<12} {r['target']:<28} {r['field'] or '':<18} "
                   f"{r['source'] or ''}  {json.dumps(r['detail'], ensure_ascii=False)}")
