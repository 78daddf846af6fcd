from tests.conftest import login


def test_admin_logs_in_and_sees_dashboard(factory, client):
    tenant = factory.tenant("acme")
    factory.user(tenant, "boss@acme.test", role_key="admin")
    login(client, "acme", "boss@acme.test")
    page = client.get("/acme/")
    assert page.status_code == 200
    assert b"Org acme" in page.data
