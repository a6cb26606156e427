"""Lake Formation through real boto3 clients: grants and their shapes, and Glue and Athena held to them.

Root sets up a database of two CSV tables and the IAM users; each user's IAM policy allows Glue, Athena,
S3 and Lake Formation, so what a user sees or reads is Lake Formation's decision alone.
"""

from __future__ import annotations

import uuid

import botocore.config
import botocore.exceptions
import pytest
from conftest import unique
from lake_helpers import rows_of, run_query

from sagelab.catalog.formats import storage_descriptor

NO_RETRY = botocore.config.Config(retries={"max_attempts": 1})
IAP = {"DataLakePrincipalIdentifier": "IAM_ALLOWED_PRINCIPALS"}
EVERYTHING = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["glue:*", "athena:*", ' \
             '"s3:*", "lakeformation:*"], "Resource": "*"}]}'


class User:
    def __init__(self, server, iam):
        self.server = server
        self.name = f"lf-{uuid.uuid4().hex[:10]}"
        self.arn = iam.create_user(UserName=self.name)["User"]["Arn"]
        key = iam.create_access_key(UserName=self.name)["AccessKey"]
        self.key, self.secret = key["AccessKeyId"], key["SecretAccessKey"]
        iam.put_user_policy(UserName=self.name, PolicyName="lake", PolicyDocument=EVERYTHING)
        self.principal = {"DataLakePrincipalIdentifier": self.arn}

    def client(self, service: str):
        return self.server.client(service, aws_access_key_id=self.key, aws_secret_access_key=self.secret,
                                  config=NO_RETRY)


def error_of(call) -> dict:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call()
    return {"Status": raised.value.response["ResponseMetadata"]["HTTPStatusCode"], **raised.value.response["Error"]}


@pytest.fixture(scope="module")
def lf(server):
    return server.client("lakeformation")


@pytest.fixture(scope="module")
def iam(server):
    return server.client("iam")


@pytest.fixture(scope="module")
def lake(glue, s3):
    bucket = unique("lf")
    s3.create_bucket(Bucket=bucket)
    database = unique("hr").replace("-", "_")
    glue.create_database(DatabaseInput={"Name": database})
    s3.put_object(Bucket=bucket, Key="people/p.csv",
                  Body=b"1,ann,100,eu\n2,bob,200,us\n3,cy,300,eu\n4,dee,400,apac\n")
    columns = [{"Name": "id", "Type": "bigint"}, {"Name": "name", "Type": "string"},
               {"Name": "salary", "Type": "bigint"}, {"Name": "region", "Type": "string"}]
    for table in ("people", "payroll"):
        glue.create_table(DatabaseName=database, TableInput={
            "Name": table, "StorageDescriptor": storage_descriptor("csv", f"s3://{bucket}/people/", columns)})
    return {"bucket": bucket, "database": database, "output": f"s3://{bucket}/results/"}


def table(lake, name: str = "people") -> dict:
    return {"Table": {"DatabaseName": lake["database"], "Name": name}}


def locked(lf, lake, name: str) -> dict:
    """The table put under Lake Formation: its default grant to IAM_ALLOWED_PRINCIPALS revoked."""
    lf.revoke_permissions(Principal=IAP, Resource=table(lake, name), Permissions=["ALL"])
    return table(lake, name)


def query(user: User, lake, sql: str) -> tuple[str, list | str]:
    """(state, rows) of a query run by the user, or (state, reason) when it failed."""
    athena = user.client("athena")
    execution = run_query(athena, sql, lake["database"], lake["output"])
    state = execution["Status"]["State"]
    if state != "SUCCEEDED":
        return state, execution["Status"].get("StateChangeReason", "")
    return state, rows_of(athena, execution["QueryExecutionId"])


def columns_seen(user: User, lake, name: str = "people") -> list[str]:
    found = user.client("glue").get_table(DatabaseName=lake["database"], Name=name)["Table"]
    return [c["Name"] for c in found["StorageDescriptor"]["Columns"]]


# --- the API: settings, locations, grants and their errors ---------------------------------------------
def test_data_lake_settings_default_to_iam_control_and_round_trip(lf, server):
    settings = lf.get_data_lake_settings()["DataLakeSettings"]
    assert settings["DataLakeAdmins"] == []
    assert settings["CreateDatabaseDefaultPermissions"] == [{"Principal": IAP, "Permissions": ["ALL"]}]
    assert settings["CreateTableDefaultPermissions"] == [{"Principal": IAP, "Permissions": ["ALL"]}]
    account = server.client("sts").get_caller_identity()["Account"]
    admin = f"arn:aws:iam::{account}:user/lake-admin"
    try:
        lf.put_data_lake_settings(DataLakeSettings={**settings, "DataLakeAdmins": [
            {"DataLakePrincipalIdentifier": admin}]})
        assert lf.get_data_lake_settings()["DataLakeSettings"]["DataLakeAdmins"] == [
            {"DataLakePrincipalIdentifier": admin}]
        bad = error_of(lambda: lf.put_data_lake_settings(DataLakeSettings={
            "DataLakeAdmins": [{"DataLakePrincipalIdentifier": "alice"}]}))
        assert bad["Code"] == "InvalidInputException" and "DataLakeAdmins[0]" in bad["Message"]
    finally:
        lf.put_data_lake_settings(DataLakeSettings=settings)


def test_new_tables_follow_the_default_permissions_of_the_settings(lf, iam, server, glue, lake):
    settings = lf.get_data_lake_settings()["DataLakeSettings"]
    user = User(server, iam)
    database = unique("strict").replace("-", "_")
    try:
        lf.put_data_lake_settings(DataLakeSettings={**settings, "CreateTableDefaultPermissions": []})
        glue.create_database(DatabaseInput={"Name": database})
    finally:
        lf.put_data_lake_settings(DataLakeSettings=settings)
    assert glue.get_database(Name=database)["Database"]["CreateTableDefaultPermissions"] == []
    glue.create_table(DatabaseName=database, TableInput={"Name": "t", "StorageDescriptor": storage_descriptor(
        "csv", f"s3://{lake['bucket']}/people/", [{"Name": "a", "Type": "string"}])})
    assert lf.list_permissions(Resource={"Table": {"DatabaseName": database, "Name": "t"}})[
        "PrincipalResourcePermissions"] == []
    refused = error_of(lambda: user.client("glue").get_table(DatabaseName=database, Name="t"))
    assert refused["Code"] == "AccessDeniedException"


def test_register_describe_list_and_deregister_a_location(lf, lake):
    arn = f"arn:aws:s3:::{lake['bucket']}/people"
    lf.register_resource(ResourceArn=arn, UseServiceLinkedRole=True)
    info = lf.describe_resource(ResourceArn=arn)["ResourceInfo"]
    assert info["ResourceArn"] == arn and info["RoleArn"].endswith("/AWSServiceRoleForLakeFormationDataAccess")
    assert error_of(lambda: lf.register_resource(ResourceArn=arn, UseServiceLinkedRole=True))["Code"] == \
        "AlreadyExistsException"
    listed = lf.list_resources(FilterConditionList=[{"Field": "RESOURCE_ARN", "ComparisonOperator": "EQ",
                                                     "StringValueList": [arn]}])["ResourceInfoList"]
    assert [r["ResourceArn"] for r in listed] == [arn]
    lf.deregister_resource(ResourceArn=arn)
    missing = error_of(lambda: lf.describe_resource(ResourceArn=arn))
    assert missing["Code"] == "EntityNotFoundException" and arn in missing["Message"]


def test_grant_list_and_revoke_shapes(lf, iam, server, lake):
    user = User(server, iam)
    lf.grant_permissions(Principal=user.principal, Resource=table(lake), Permissions=["SELECT", "DESCRIBE"],
                         PermissionsWithGrantOption=["SELECT"])
    lf.grant_permissions(Principal=user.principal, Resource={"TableWithColumns": {
        "DatabaseName": lake["database"], "Name": "payroll", "ColumnWildcard": {"ExcludedColumnNames": ["salary"]}}},
        Permissions=["SELECT"])
    mine = lf.list_permissions(Principal=user.principal)["PrincipalResourcePermissions"]
    assert [(p["Resource"], p["Permissions"], p["PermissionsWithGrantOption"]) for p in mine] == [
        ({"Table": {"CatalogId": lake_account(server), "DatabaseName": lake["database"], "Name": "people"}},
         ["DESCRIBE", "SELECT"], ["SELECT"]),
        ({"TableWithColumns": {"CatalogId": lake_account(server), "DatabaseName": lake["database"],
                               "Name": "payroll", "ColumnWildcard": {"ExcludedColumnNames": ["salary"]}}},
         ["SELECT"], [])]
    on_people = lf.list_permissions(Resource=table(lake))["PrincipalResourcePermissions"]
    # The table's default grant to IAM_ALLOWED_PRINCIPALS is listed beside the user's.
    assert {(p["Principal"]["DataLakePrincipalIdentifier"], tuple(p["Permissions"])) for p in on_people} == {
        ("IAM_ALLOWED_PRINCIPALS", ("ALL",)), (user.arn, ("DESCRIBE", "SELECT"))}
    lf.revoke_permissions(Principal=user.principal, Resource=table(lake), Permissions=["DESCRIBE"])
    answer = lf.batch_revoke_permissions(Entries=[
        {"Id": "1", "Principal": user.principal, "Resource": table(lake), "Permissions": ["SELECT"]},
        {"Id": "2", "Principal": user.principal, "Resource": table(lake, "nope"), "Permissions": ["SELECT"]}])
    assert [(f["RequestEntry"]["Id"], f["Error"]["ErrorCode"]) for f in answer["Failures"]] == [
        ("2", "EntityNotFoundException")]
    left = lf.list_permissions(Principal=user.principal, ResourceType="TABLE")["PrincipalResourcePermissions"]
    assert [list(p["Resource"]) for p in left] == [["TableWithColumns"]]
    events = server.client("cloudtrail").lookup_events(LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "RevokePermissions"}])["Events"]
    assert events and events[0]["EventSource"] == "lakeformation.amazonaws.com"
    granted = lf.batch_grant_permissions(Entries=[
        {"Id": "a", "Principal": user.principal, "Resource": {"Database": {"Name": lake["database"]}},
         "Permissions": ["DESCRIBE"]}])
    assert granted["Failures"] == []


def lake_account(server) -> str:
    return server.client("sts").get_caller_identity()["Account"]


def test_bad_grants_name_what_is_wrong(lf, iam, server, lake):
    user = User(server, iam)
    missing = error_of(lambda: lf.grant_permissions(Principal=user.principal, Resource={
        "Database": {"Name": "no_such_db"}}, Permissions=["DESCRIBE"]))
    assert (missing["Status"], missing["Code"]) == (400, "EntityNotFoundException")
    assert "no_such_db" in missing["Message"]
    missing = error_of(lambda: lf.grant_permissions(Principal=user.principal, Resource=table(lake, "ghost"),
                                                    Permissions=["SELECT"]))
    assert missing["Code"] == "EntityNotFoundException" and "ghost" in missing["Message"]
    wrong = error_of(lambda: lf.grant_permissions(Principal=user.principal, Resource={
        "Database": {"Name": lake["database"]}}, Permissions=["SELECT"]))
    assert wrong["Code"] == "InvalidInputException" and "Permissions" in wrong["Message"]
    wrong = error_of(lambda: lf.grant_permissions(Principal=user.principal, Resource=table(lake),
                                                  Permissions=["DESCRIBE"], PermissionsWithGrantOption=["SELECT"]))
    assert wrong["Code"] == "InvalidInputException" and "PermissionsWithGrantOption" in wrong["Message"]
    wrong = error_of(lambda: lf.grant_permissions(Principal=user.principal, Resource={"TableWithColumns": {
        "DatabaseName": lake["database"], "Name": "people", "ColumnNames": ["bonus"]}}, Permissions=["SELECT"]))
    assert wrong["Code"] == "InvalidInputException" and "bonus" in wrong["Message"]
    wrong = error_of(lambda: lf.grant_permissions(Principal={"DataLakePrincipalIdentifier": "bob"},
                                                  Resource=table(lake), Permissions=["SELECT"]))
    assert wrong["Code"] == "InvalidInputException" and "DataLakePrincipalIdentifier" in wrong["Message"]
    # Without the grant option, a user passes nothing on.
    refused = error_of(lambda: user.client("lakeformation").grant_permissions(
        Principal=user.principal, Resource=table(lake), Permissions=["SELECT"]))
    assert (refused["Status"], refused["Code"]) == (403, "AccessDeniedException")


# --- enforcement: Glue and Athena held to the grants ---------------------------------------------------
@pytest.fixture(scope="module")
def column_user(lf, iam, server, glue, lake):
    """Two tables under Lake Formation; the user holds SELECT on two columns of one of them."""
    user = User(server, iam)
    locked(lf, lake, "people")
    locked(lf, lake, "payroll")
    lf.grant_permissions(Principal=user.principal, Resource={"TableWithColumns": {
        "DatabaseName": lake["database"], "Name": "people", "ColumnNames": ["id", "name"]}}, Permissions=["SELECT"])
    return user


def test_a_user_with_iam_alone_sees_tables_that_still_grant_iam_allowed_principals(iam, server, glue, lake):
    database = unique("open").replace("-", "_")
    glue.create_database(DatabaseInput={"Name": database})
    glue.create_table(DatabaseName=database, TableInput={"Name": "t", "StorageDescriptor": storage_descriptor(
        "csv", f"s3://{lake['bucket']}/people/", [{"Name": "a", "Type": "string"}, {"Name": "b", "Type": "string"}])})
    user = User(server, iam)
    found = user.client("glue").get_table(DatabaseName=database, Name="t")["Table"]
    assert [c["Name"] for c in found["StorageDescriptor"]["Columns"]] == ["a", "b"]


def test_granted_columns_are_all_glue_and_select_star_show(column_user, lake):
    assert columns_seen(column_user, lake) == ["id", "name"]
    tables = column_user.client("glue").get_tables(DatabaseName=lake["database"])["TableList"]
    assert [(t["Name"], [c["Name"] for c in t["StorageDescriptor"]["Columns"]]) for t in tables] == [
        ("people", ["id", "name"])]
    state, rows = query(column_user, lake, "SELECT * FROM people ORDER BY id")
    assert state == "SUCCEEDED"
    assert rows == [["id", "name"], ["1", "ann"], ["2", "bob"], ["3", "cy"], ["4", "dee"]]
    assert [r[0] for r in query(column_user, lake, "DESCRIBE people")[1]] == ["id", "name"]
    assert query(column_user, lake, "SHOW TABLES")[1] == [["people"]]


def test_a_query_naming_an_ungranted_column_or_table_is_refused(column_user, lake):
    state, reason = query(column_user, lake, "SELECT name, salary FROM people")
    assert state == "FAILED"
    assert reason == ("COLUMN_NOT_FOUND: line 1:14: Column 'salary' cannot be resolved or requester is not "
                      "authorized to access requested resources")
    state, reason = query(column_user, lake, "SELECT count(*) FROM payroll")
    assert state == "FAILED"
    assert reason.endswith(f"Insufficient Lake Formation permission(s) on {lake['database']}.payroll")
    refused = error_of(lambda: column_user.client("glue").get_table(DatabaseName=lake["database"], Name="payroll"))
    assert refused["Code"] == "AccessDeniedException"
    assert refused["Message"] == "Insufficient Lake Formation permission(s) on payroll"
    refused = error_of(lambda: column_user.client("glue").get_partitions(DatabaseName=lake["database"],
                                                                         TableName="payroll"))
    assert refused["Code"] == "AccessDeniedException"
    databases = column_user.client("glue").get_databases()["DatabaseList"]
    assert lake["database"] in [d["Name"] for d in databases]


def test_a_row_filter_applies_as_a_where(lf, iam, server, lake, column_user):
    lf.create_data_cells_filter(TableData={
        "TableCatalogId": lake_account(server), "DatabaseName": lake["database"], "TableName": "payroll",
        "Name": "eu_only", "RowFilter": {"FilterExpression": "region = 'eu'"},
        "ColumnWildcard": {"ExcludedColumnNames": ["salary"]}})
    cells = lf.get_data_cells_filter(TableCatalogId=lake_account(server), DatabaseName=lake["database"],
                                     TableName="payroll", Name="eu_only")["DataCellsFilter"]
    assert cells["RowFilter"] == {"FilterExpression": "region = 'eu'"}
    assert cells["ColumnWildcard"] == {"ExcludedColumnNames": ["salary"]}
    listed = lf.list_data_cells_filter(Table={"DatabaseName": lake["database"], "Name": "payroll"})
    assert [f["Name"] for f in listed["DataCellsFilters"]] == ["eu_only"]
    bad = error_of(lambda: lf.create_data_cells_filter(TableData={
        "TableCatalogId": lake_account(server), "DatabaseName": lake["database"], "TableName": "payroll",
        "Name": "broken", "RowFilter": {"FilterExpression": "bonus > 1"}, "ColumnNames": ["id"]}))
    assert bad["Code"] == "InvalidInputException" and "FilterExpression" in bad["Message"]
    user = User(server, iam)
    lf.grant_permissions(Principal=user.principal, Resource={"DataCellsFilter": {
        "TableCatalogId": lake_account(server), "DatabaseName": lake["database"], "TableName": "payroll",
        "Name": "eu_only"}}, Permissions=["SELECT"])
    state, rows = query(user, lake, "SELECT * FROM payroll ORDER BY id")
    assert (state, rows) == ("SUCCEEDED", [["id", "name", "region"], ["1", "ann", "eu"], ["3", "cy", "eu"]])
    assert columns_seen(user, lake, "payroll") == ["id", "name", "region"]
    lf.delete_data_cells_filter(TableCatalogId=lake_account(server), DatabaseName=lake["database"],
                                TableName="payroll", Name="eu_only")
    assert query(user, lake, "SELECT id FROM payroll")[0] == "FAILED"
    assert error_of(lambda: lf.get_data_cells_filter(
        TableCatalogId=lake_account(server), DatabaseName=lake["database"], TableName="payroll",
        Name="eu_only"))["Code"] == "EntityNotFoundException"


def test_a_revoke_takes_effect_at_once(lf, iam, server, lake, column_user):
    user = User(server, iam)
    lf.grant_permissions(Principal=user.principal, Resource=table(lake, "payroll"), Permissions=["SELECT"])
    assert columns_seen(user, lake, "payroll") == ["id", "name", "salary", "region"]
    assert query(user, lake, "SELECT sum(salary) AS total FROM payroll")[1] == [["total"], ["1000"]]
    lf.revoke_permissions(Principal=user.principal, Resource=table(lake, "payroll"), Permissions=["SELECT"])
    assert error_of(lambda: columns_seen(user, lake, "payroll"))["Code"] == "AccessDeniedException"
    assert query(user, lake, "SELECT sum(salary) FROM payroll")[0] == "FAILED"


def test_root_and_data_lake_admins_see_everything(lf, iam, server, glue, athena, lake, column_user):
    full = glue.get_table(DatabaseName=lake["database"], Name="payroll")["Table"]
    assert len(full["StorageDescriptor"]["Columns"]) == 4
    admin = User(server, iam)
    settings = lf.get_data_lake_settings()["DataLakeSettings"]
    try:
        lf.put_data_lake_settings(DataLakeSettings={**settings, "DataLakeAdmins": [admin.principal]})
        assert columns_seen(admin, lake, "payroll") == ["id", "name", "salary", "region"]
        state, rows = query(admin, lake, "SELECT * FROM people WHERE id = 1")
        assert (state, rows) == ("SUCCEEDED", [["id", "name", "salary", "region"], ["1", "ann", "100", "eu"]])
        # An administrator grants without holding the grant option.
        admin.client("lakeformation").grant_permissions(Principal=column_user.principal, Resource={
            "Database": {"Name": lake["database"]}}, Permissions=["DESCRIBE"])
    finally:
        lf.put_data_lake_settings(DataLakeSettings=settings)


def test_making_a_table_needs_create_table_and_gives_its_maker_everything(lf, iam, server, glue, lake):
    database = unique("team").replace("-", "_")
    glue.create_database(DatabaseInput={"Name": database})
    lf.revoke_permissions(Principal=IAP, Resource={"Database": {"Name": database}}, Permissions=["ALL"])
    user = User(server, iam)
    spec = {"Name": "mine", "StorageDescriptor": storage_descriptor("csv", f"s3://{lake['bucket']}/people/", [
        {"Name": "a", "Type": "string"}])}
    refused = error_of(lambda: user.client("glue").create_table(DatabaseName=database, TableInput=spec))
    assert (refused["Code"], refused["Message"]) == (
        "AccessDeniedException", f"Insufficient Lake Formation permission(s) on {database}")
    lf.grant_permissions(Principal=user.principal, Resource={"Database": {"Name": database}},
                         Permissions=["CREATE_TABLE"])
    user.client("glue").create_table(DatabaseName=database, TableInput=spec)
    held = lf.list_permissions(Principal=user.principal, ResourceType="TABLE")["PrincipalResourcePermissions"]
    assert [(p["Resource"]["Table"]["Name"], p["Permissions"], p["PermissionsWithGrantOption"]) for p in held] == [
        ("mine", ["ALL"], ["ALL"])]
    user.client("glue").delete_table(DatabaseName=database, Name="mine")
    refused = error_of(lambda: user.client("glue").delete_database(Name=database))
    assert refused["Code"] == "AccessDeniedException"


def test_grants_filters_and_settings_survive_a_crash(tmp_path):
    """Each write is committed before it is answered: a second platform on the same home, opened while the
    first was never closed (as after a crash), holds the same grants and decides the same."""
    from sagelab.iam.principals import Caller, CallerKind
    from sagelab.lakeformation.access import view_for
    from sagelab.platform import Platform
    from sagelab.settings import load_settings

    settings = load_settings({"home": str(tmp_path / "home"), "engine": "inline"}, environ={})
    first = Platform(settings).open()
    first.catalog.create_database({"Name": "db"})
    first.catalog.create_table("db", {"Name": "t", "StorageDescriptor": storage_descriptor(
        "csv", "s3://crash/t/", [{"Name": "a", "Type": "string"}, {"Name": "b", "Type": "string"}])})
    lf = first.lakeformation
    arn = f"arn:aws:iam::{first.account.id}:user/ana"
    table_resource = {"Table": {"DatabaseName": "db", "Name": "t"}}
    lf.revoke({"Principal": IAP, "Resource": table_resource, "Permissions": ["ALL"]}, by="root", grantor=None)
    lf.grant({"Principal": {"DataLakePrincipalIdentifier": arn}, "Resource": {"TableWithColumns": {
        "DatabaseName": "db", "Name": "t", "ColumnNames": ["a"]}}, "Permissions": ["SELECT"]}, by="root",
        grantor=None)
    lf.create_filter({"DatabaseName": "db", "TableName": "t", "Name": "f", "RowFilter": {"AllRowsWildcard": {}},
                      "ColumnNames": ["b"]})
    lf.put_settings({"DataLakeAdmins": [{"DataLakePrincipalIdentifier": f"arn:aws:iam::{first.account.id}:user/x"}]})

    second = Platform(settings).open()
    try:
        ana = Caller(CallerKind.USER, arn, "AIDAANA", second.account.id, "ana")
        shown = view_for(second.lakeformation, ana).table(second.catalog.get_table("db", "t"))
        assert [c["Name"] for c in shown["StorageDescriptor"]["Columns"]] == ["a"]
        listed = second.lakeformation.list_permissions({"Resource": table_resource})
        assert [p["Principal"]["DataLakePrincipalIdentifier"] for p in listed["PrincipalResourcePermissions"]] == [arn]
        assert list(second.lakeformation.filters()) == ["db/t/f"]
        assert second.lakeformation.admins() == {f"arn:aws:iam::{first.account.id}:user/x"}
    finally:
        second.close()
        first.close()
