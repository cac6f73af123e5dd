"""First-run page, shown while the database is empty: how to point the collector at an inventory, and a
button that fills the database with the demo fleet through the real collector and simulator, run as the
collector's own ``demo`` command by ``services.demo``."""

from __future__ import annotations

import streamlit as st

from services import demo
from ui import context, data, links
from ui.i18n import current_language, t

DEMO_HOSTS = 200

INVENTORY_HELP = {
    "en": """
1. Write an inventory CSV with the header `host,port,scheme,transport,credential,site,tags`; only `host`
   is required (port 5985 for http, 5986 for https; transport `ntlm` or `basic`).
2. Give the collector the account to use:
   `ACTIVATION_CRED_DEFAULT_USERNAME` and `ACTIVATION_CRED_DEFAULT_PASSWORD`.
3. Poll once: `python -m collectors poll --inventory inventory.csv`
   (or set `ACTIVATION_INVENTORY_PATH` and run `python -m collectors poll`).
4. Come back here: the dashboard fills in as soon as the first results are stored.
""",
    "zh-TW": """
1. 建立主機清單 CSV，標頭為 `host,port,scheme,transport,credential,site,tags`；只有 `host` 為必填
   （http 使用連接埠 5985，https 使用 5986；transport 可為 `ntlm` 或 `basic`）。
2. 設定收集器使用的帳號：
   `ACTIVATION_CRED_DEFAULT_USERNAME` 與 `ACTIVATION_CRED_DEFAULT_PASSWORD`。
3. 執行一次輪詢：`python -m collectors poll --inventory inventory.csv`
   （或設定 `ACTIVATION_INVENTORY_PATH` 後執行 `python -m collectors poll`）。
4. 回到此頁：第一批結果寫入後，儀表板就會顯示資料。
""",
}


def load_demo(hosts: int) -> None:
    """Run the collector's demo; a missing loader or a failed run is shown as one line and leaves the page usable."""
    with st.spinner(t("Loading the demo fleet…")):
        outcome = demo.load_demo(context.settings(), hosts=hosts)
    if not outcome.available:
        st.error(t("The demo loader is not available: {reason}").format(reason=outcome.error))
        return
    if not outcome.ok:
        st.error(t("Loading the demo fleet failed: {reason}").format(reason=outcome.error))
        return
    data.clear()
    st.success(t("The demo fleet is loaded."))
    st.rerun()


if not data.fleet_is_empty(context.source()):
    st.switch_page(links.OVERVIEW.path, query_params={"lang": current_language()})
st.title(t("Welcome to Activation Monitor"))
st.info(t("The database is empty: no host has been polled yet."))
st.subheader(t("Point the collector at an inventory"))
st.markdown(INVENTORY_HELP[current_language()])
st.subheader(t("Or try it with a demo fleet"))
hosts = st.number_input(t("Demo hosts"), min_value=10, max_value=5000, value=DEMO_HOSTS, step=10, key="demo_hosts")
if st.button(t("Load the demo fleet"), key="load_demo", type="primary", icon=":material/play_arrow:"):
    load_demo(int(hosts))
