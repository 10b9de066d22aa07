"""Languages of the server-rendered pages (status page, courier page): English and
Simplified Chinese.

Message catalogues are plain dicts here, one per language with the same keys (a test
holds them to that), so there is no gettext toolchain to run. Keys are dotted by
page; ``state.*`` names every order state, ``shipment.*`` every shipment status.
Placeholders are ``str.format`` fields and must be the same in both languages.

Which language a request gets, first match wins:

1. ``?lang=zh-CN`` or ``?lang=en`` on the page (the switch): answered with a cookie
   ``wcs_lang`` that remembers the choice for a year, and a redirect without it;
2. that cookie;
3. the browser's ``Accept-Language``, by quality: any ``zh`` tag means Chinese
   (only Simplified is offered, and a Traditional reader reads it better than
   English), ``en`` English;
4. English.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from fastapi import Request
from starlette.responses import Response

from wcs.domain.states import OrderState

Lang = Literal["en", "zh-CN"]
LANGS: tuple[Lang, ...] = ("en", "zh-CN")
DEFAULT: Lang = "en"
COOKIE = "wcs_lang"
COOKIE_MAX_AGE_S = 365 * 24 * 3600

EN: dict[str, str] = {
    # order states
    "state.received": "received",
    "state.validated": "validated",
    "state.exception": "exception",
    "state.backordered": "backordered",
    "state.reserved": "reserved",
    "state.pick_planned": "pick planned",
    "state.picking": "picking",
    "state.picked": "picked",
    "state.qc_passed": "QC passed",
    "state.qc_failed": "QC failed",
    "state.packing": "packing",
    "state.packed": "packed",
    "state.allocated": "allocated",
    "state.shipped": "shipped",
    "state.in_transit": "in transit",
    "state.out_for_delivery": "out for delivery",
    "state.delivered": "delivered",
    "state.delivery_failed": "delivery failed",
    "state.delayed": "delayed",
    "state.damaged": "damaged",
    "state.closed": "closed",
    "state.cancelled": "cancelled",
    # shipment statuses
    "shipment.pending": "being booked",
    "shipment.booked": "at the dock, not handed over",
    "shipment.shipped": "handed over",
    "shipment.in_transit": "in transit",
    "shipment.out_for_delivery": "out for delivery",
    "shipment.delivered": "delivered",
    "shipment.delivery_failed": "attempt failed",
    "shipment.delayed": "delayed",
    "shipment.damaged": "damaged",
    "shipment.cancelled": "cancelled",
    # devices and alerts
    "device.online": "online",
    "device.offline": "offline",
    "device.fault": "fault",
    "severity.critical": "critical",
    "severity.warning": "warning",
    "severity.info": "info",
    # language switch
    "lang.switch": "Language",
    "lang.en": "English",
    "lang.zh-CN": "中文",
    # status page
    "status.title": "Warehouse status",
    "status.connecting": "connecting…",
    "status.live": "live",
    "status.reconnecting": "reconnecting…",
    "status.utc": "UTC",
    "status.overview": "Overview",
    "status.active_orders": "Active orders",
    "status.critical_alerts": "Critical alerts",
    "status.warnings": "Warnings",
    "status.devices_online": "Devices online",
    "status.order_flow": "Order flow",
    "status.order_flow_note": "orders per state, live",
    "status.kpis": "KPIs",
    "status.last_24h": "last 24 h",
    "status.kpi.processing": "Processing time p50 / p95",
    "status.kpi.pick_accuracy": "Pick accuracy",
    "status.kpi.pack_pass": "Pack pass rate (weight)",
    "status.kpi.qc_pass": "QC pass rate",
    "status.kpi.shipped_on_time": "Shipped on time",
    "status.kpi.delivered_on_time": "Delivered on time",
    "status.kpi.rating": "Customer rating",
    "status.kpi.returns": "Returns rate",
    "status.throughput": "Throughput per hour",
    "status.throughput_note": "received / packed",
    "status.throughput_label": "orders received and packed per hour",
    "status.throughput_bar": "{hour}: {received} received, {packed} packed",
    "status.open_alerts": "Open alerts",
    "status.no_alerts": "No open alerts.",
    "status.devices": "Devices",
    "status.device": "Device",
    "status.kind": "Kind",
    "status.zone": "Zone",
    "status.state": "State",
    "status.since": "Since",
    "status.no_devices": "No device has reported yet.",
    "status.recent": "Recent state changes",
    "status.new": "new",
    "status.forecast": "Forecast",
    "status.next_24h": "next 24 h",
    "status.forecast_summary": (
        "{total} orders expected; peak {peak}/h at {hour} UTC; up to {pickers} pickers "
        "({picker_hours} picker-hours)."
    ),
    "status.forecast_hour": "Hour (UTC)",
    "status.forecast_orders": "Orders",
    "status.forecast_range": "Range",
    "status.forecast_pickers": "Pickers",
    "status.forecast_waves": "Waves",
    "status.forecast_missing": "Forecast not available in this process.",
    "status.by_state": "Orders by state",
    "status.orders_in_state": "{state}: {n} orders",
    "status.denied_title": "Warehouse status",
    "status.denied_help": (
        "Ask a supervisor for a staff token, then open /status?token=<token> once on this "
        "display; it is remembered for a shift."
    ),
    # courier page
    "courier.title": "My route",
    "courier.date": "Route of {date}",
    "courier.summary": "{stops} stops · {km} km · leave {depart} · back {back}",
    "courier.done_count": "{done} of {total} done",
    "courier.no_route": "No route for you today. Ask the dispatcher if that is unexpected.",
    "courier.start": "Start route",
    "courier.started": "Route started at {time}",
    "courier.logout": "Sign out",
    "courier.stop": "Stop {seq}",
    "courier.eta": "ETA {time}",
    "courier.window": "window {start}–{end}",
    "courier.navigate": "Navigate",
    "courier.call": "Call",
    "courier.note": "Note",
    "courier.tracking": "Parcel {tracking_no}",
    "courier.weight": "{kg} kg",
    "courier.delivered": "Delivered",
    "courier.delivered_at": "Delivered {time}",
    "courier.receiver": "Received by",
    "courier.photo": "Photo of the parcel at the door",
    "courier.confirm_delivery": "Confirm delivery",
    "courier.failed": "Failed attempt",
    "courier.failed_at": "Attempt failed {time}",
    "courier.reason": "Reason",
    "courier.detail": "What happened (optional)",
    "courier.confirm_failed": "Record failed attempt",
    "courier.sending": "Sending…",
    "courier.waiting_handover": "Not handed over yet: collect it at the dock",
    "courier.reason.not_home": "Nobody home",
    "courier.reason.refused": "Refused by the recipient",
    "courier.reason.address_not_found": "Address not found",
    "courier.reason.no_access": "No access to the building",
    "courier.reason.other": "Other (say what)",
    "courier.ok.started": "Route started: parcels are out for delivery.",
    "courier.ok.delivered": "Stop {seq} delivered. Thank you!",
    "courier.ok.failed": "Stop {seq}: failed attempt recorded; it is planned again tomorrow.",
    "courier.error": "That did not work",
    "courier.login_title": "Courier sign-in",
    "courier.login_help": (
        "Open the link with your courier token once (/courier?token=<token>); this phone "
        "remembers it for the shift."
    ),
    "courier.login_denied": "This token cannot open the courier page: {reason}.",
    "courier.reason_unknown_token": "the token is unknown or revoked",
    "courier.reason_not_courier": "it is not a courier token",
    "courier.offline_hint": "Addresses, calls and navigation keep working without network.",
}

ZH: dict[str, str] = {
    "state.received": "已接收",
    "state.validated": "已校验",
    "state.exception": "异常",
    "state.backordered": "缺货待补",
    "state.reserved": "已预留库存",
    "state.pick_planned": "已排拣货",
    "state.picking": "拣货中",
    "state.picked": "已拣货",
    "state.qc_passed": "质检通过",
    "state.qc_failed": "质检未通过",
    "state.packing": "打包中",
    "state.packed": "已打包",
    "state.allocated": "已分配承运",
    "state.shipped": "已发运",
    "state.in_transit": "运输中",
    "state.out_for_delivery": "派送中",
    "state.delivered": "已签收",
    "state.delivery_failed": "派送失败",
    "state.delayed": "延误",
    "state.damaged": "破损",
    "state.closed": "已完结",
    "state.cancelled": "已取消",
    "shipment.pending": "预订中",
    "shipment.booked": "在月台，未交接",
    "shipment.shipped": "已交接",
    "shipment.in_transit": "运输中",
    "shipment.out_for_delivery": "派送中",
    "shipment.delivered": "已签收",
    "shipment.delivery_failed": "派送未成功",
    "shipment.delayed": "延误",
    "shipment.damaged": "破损",
    "shipment.cancelled": "已取消",
    "device.online": "在线",
    "device.offline": "离线",
    "device.fault": "故障",
    "severity.critical": "严重",
    "severity.warning": "警告",
    "severity.info": "提示",
    "lang.switch": "语言",
    "lang.en": "English",
    "lang.zh-CN": "中文",
    "status.title": "仓库状态",
    "status.connecting": "连接中…",
    "status.live": "实时",
    "status.reconnecting": "重新连接中…",
    "status.utc": "UTC",
    "status.overview": "概览",
    "status.active_orders": "进行中的订单",
    "status.critical_alerts": "严重告警",
    "status.warnings": "警告",
    "status.devices_online": "在线设备",
    "status.order_flow": "订单流程",
    "status.order_flow_note": "各状态订单数，实时",
    "status.kpis": "关键指标",
    "status.last_24h": "近 24 小时",
    "status.kpi.processing": "处理时长 p50 / p95",
    "status.kpi.pick_accuracy": "拣货准确率",
    "status.kpi.pack_pass": "打包称重通过率",
    "status.kpi.qc_pass": "质检通过率",
    "status.kpi.shipped_on_time": "准时发运",
    "status.kpi.delivered_on_time": "准时送达",
    "status.kpi.rating": "客户评分",
    "status.kpi.returns": "退货率",
    "status.throughput": "每小时吞吐量",
    "status.throughput_note": "接收 / 打包",
    "status.throughput_label": "每小时接收和打包的订单",
    "status.throughput_bar": "{hour}：接收 {received}，打包 {packed}",
    "status.open_alerts": "未处理告警",
    "status.no_alerts": "没有未处理的告警。",
    "status.devices": "设备",
    "status.device": "设备",
    "status.kind": "类型",
    "status.zone": "区域",
    "status.state": "状态",
    "status.since": "起始",
    "status.no_devices": "尚无设备上报。",
    "status.recent": "最近的状态变化",
    "status.new": "新建",
    "status.forecast": "预测",
    "status.next_24h": "未来 24 小时",
    "status.forecast_summary": (
        "预计 {total} 单；高峰 {peak} 单/小时，在 {hour} UTC；最多需要 {pickers} 名拣货员"
        "（共 {picker_hours} 人时）。"
    ),
    "status.forecast_hour": "小时 (UTC)",
    "status.forecast_orders": "订单",
    "status.forecast_range": "范围",
    "status.forecast_pickers": "拣货员",
    "status.forecast_waves": "波次",
    "status.forecast_missing": "本进程中没有预测。",
    "status.by_state": "各状态订单",
    "status.orders_in_state": "{state}：{n} 单",
    "status.denied_title": "仓库状态",
    "status.denied_help": (
        "请向主管申请员工令牌，然后在此显示屏上打开一次 /status?token=<token>；本班次内会记住。"
    ),
    "courier.title": "我的路线",
    "courier.date": "{date} 的路线",
    "courier.summary": "{stops} 个站点 · {km} 公里 · {depart} 出发 · {back} 返回",
    "courier.done_count": "已完成 {done} / {total}",
    "courier.no_route": "今天没有你的路线。如有疑问请联系调度。",
    "courier.start": "开始派送",
    "courier.started": "已于 {time} 开始派送",
    "courier.logout": "退出",
    "courier.stop": "第 {seq} 站",
    "courier.eta": "预计 {time}",
    "courier.window": "时段 {start}–{end}",
    "courier.navigate": "导航",
    "courier.call": "拨打电话",
    "courier.note": "备注",
    "courier.tracking": "包裹 {tracking_no}",
    "courier.weight": "{kg} 公斤",
    "courier.delivered": "已送达",
    "courier.delivered_at": "{time} 已送达",
    "courier.receiver": "签收人",
    "courier.photo": "包裹在门口的照片",
    "courier.confirm_delivery": "确认送达",
    "courier.failed": "派送未成功",
    "courier.failed_at": "{time} 派送未成功",
    "courier.reason": "原因",
    "courier.detail": "具体情况（可选）",
    "courier.confirm_failed": "记录派送未成功",
    "courier.sending": "提交中…",
    "courier.waiting_handover": "尚未交接：请到月台领取",
    "courier.reason.not_home": "无人在家",
    "courier.reason.refused": "收件人拒收",
    "courier.reason.address_not_found": "地址找不到",
    "courier.reason.no_access": "无法进入楼内",
    "courier.reason.other": "其他（请说明）",
    "courier.ok.started": "已开始派送：包裹状态为派送中。",
    "courier.ok.delivered": "第 {seq} 站已送达，谢谢！",
    "courier.ok.failed": "第 {seq} 站：已记录派送未成功，明天将重新安排。",
    "courier.error": "操作未成功",
    "courier.login_title": "快递员登录",
    "courier.login_help": (
        "用你的快递员令牌打开一次链接（/courier?token=<token>）；本班次内这部手机会记住。"
    ),
    "courier.login_denied": "此令牌无法打开快递员页面：{reason}。",
    "courier.reason_unknown_token": "令牌不存在或已被撤销",
    "courier.reason_not_courier": "这不是快递员令牌",
    "courier.offline_hint": "没有网络时，地址、电话和导航仍可使用。",
}

CATALOGUES: Mapping[Lang, Mapping[str, str]] = {"en": EN, "zh-CN": ZH}

# States and statuses every catalogue must name (checked by the tests).
STATE_KEYS: tuple[str, ...] = tuple(f"state.{s.value}" for s in OrderState)


def parse_lang(value: str | None) -> Lang | None:
    """An explicit choice (query, cookie): exactly one of LANGS, case-insensitive."""
    if not value:
        return None
    for lang in LANGS:
        if value.strip().lower() == lang.lower():
            return lang
    return None


def _match(tag: str) -> Lang | None:
    primary = tag.strip().lower().split("-", 1)[0]
    if primary == "zh":
        return "zh-CN"
    if primary == "en":
        return "en"
    return None


def negotiate(accept_language: str | None) -> Lang:
    """The best of LANGS for an ``Accept-Language`` header (RFC 9110 quality values)."""
    if not accept_language:
        return DEFAULT
    ranked: list[tuple[float, int, Lang]] = []
    for position, item in enumerate(accept_language.split(",")):
        tag, *params = item.strip().split(";")
        quality = 1.0
        for param in params:
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        lang = _match(tag) if tag.strip() != "*" else DEFAULT
        if lang is not None and quality > 0:
            ranked.append((-quality, position, lang))
    return min(ranked)[2] if ranked else DEFAULT


def request_lang(request: Request) -> Lang:
    return (
        parse_lang(request.query_params.get("lang"))
        or parse_lang(request.cookies.get(COOKIE))
        or negotiate(request.headers.get("accept-language"))
    )


def remember(response: Response, lang: Lang, *, secure: bool) -> None:
    response.set_cookie(
        COOKIE,
        lang,
        max_age=COOKIE_MAX_AGE_S,
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )


class Translator:
    """``t("courier.stop", seq=3)``; a missing key falls back to English, then the key."""

    def __init__(self, lang: Lang) -> None:
        self.lang = lang
        self._messages = CATALOGUES[lang]

    def __call__(self, key: str, **params: object) -> str:
        text = self._messages.get(key) or EN.get(key) or key
        return text.format(**params) if params else text

    def state(self, state: str) -> str:
        return self.term("state", state)

    def shipment(self, status: str) -> str:
        return self.term("shipment", status)

    def term(self, prefix: str, value: str) -> str:
        """A value's name (``device.fault``); the value itself when it has none."""
        key = f"{prefix}.{value}"
        return self._messages.get(key) or EN.get(key) or value

    def subset(self, prefix: str) -> dict[str, str]:
        """Keys under ``prefix`` (without it), for the pages' scripts."""
        return {
            key.removeprefix(prefix): text
            for key, text in self._messages.items()
            if key.startswith(prefix)
        }


def translator(lang: str) -> Translator:
    return Translator(parse_lang(lang) or DEFAULT)


def translate_flow_svg(svg: str, t: Translator) -> str:
    """The generated flow diagram with its state boxes named in ``t``'s language.

    Only the visible names change; ids, classes and data attributes (which the page's
    script and the tests address) stay the machine's. English names are never longer
    than the state ids the boxes were sized for, and Chinese ones far shorter.
    """
    for state in OrderState:
        svg = svg.replace(f">{state.value}</text>", f">{_xml(t.state(state.value))}</text>")
    return svg


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
