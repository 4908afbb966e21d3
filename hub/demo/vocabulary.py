"""Words for plausible demo dossiers: Hangzhou's districts, industries and what departments find.

Everything here is illustrative; no real enterprise or person is described.
"""

from __future__ import annotations

from typing import NamedTuple


class Region(NamedTuple):
    name: str
    division: str  # administrative division code, part of the USCC
    towns: tuple[str, ...]
    roads: tuple[str, ...]


REGIONS = (
    Region(
        "上城区",
        "330102",
        ("湖滨街道", "清波街道", "小营街道", "九堡街道", "丁兰街道"),
        ("解放路", "庆春路", "秋涛路", "九堡大道"),
    ),
    Region(
        "拱墅区",
        "330105",
        ("米市巷街道", "湖墅街道", "祥符街道", "康桥街道", "半山街道"),
        ("莫干山路", "石祥路", "湖州街", "康桥路"),
    ),
    Region(
        "西湖区",
        "330106",
        ("西溪街道", "翠苑街道", "蒋村街道", "转塘街道", "三墩镇", "双浦镇"),
        ("文一西路", "古墩路", "天目山路", "之江路"),
    ),
    Region(
        "滨江区",
        "330108",
        ("西兴街道", "长河街道", "浦沿街道"),
        ("江南大道", "滨盛路", "长河路", "江虹路"),
    ),
    Region(
        "萧山区",
        "330109",
        ("城厢街道", "北干街道", "瓜沥镇", "义桥镇", "衙前镇", "临浦镇"),
        ("金城路", "市心路", "通惠路", "红山路"),
    ),
    Region(
        "余杭区",
        "330110",
        ("五常街道", "仓前街道", "闲林街道", "良渚街道", "径山镇", "瓶窑镇"),
        ("五常大道", "文一西路", "良渚大道", "余杭塘路"),
    ),
    Region(
        "富阳区",
        "330111",
        ("富春街道", "东洲街道", "新登镇", "场口镇"),
        ("金桥路", "江滨西大道", "新登路"),
    ),
    Region(
        "临安区",
        "330112",
        ("锦城街道", "青山湖街道", "於潜镇", "昌化镇"),
        ("钱王街", "科技大道", "天目路"),
    ),
    Region(
        "临平区",
        "330113",
        ("临平街道", "东湖街道", "乔司街道", "塘栖镇"),
        ("世纪大道", "星桥路", "乔莫西路"),
    ),
    Region(
        "钱塘区",
        "330114",
        ("下沙街道", "白杨街道", "义蓬街道", "河庄街道"),
        ("学林街", "文泽路", "青六路"),
    ),
)


class Industry(NamedTuple):
    name: str
    terms: tuple[str, ...]  # what the enterprise name says it does
    inspectors: tuple[str, ...]  # departments that usually inspect it, most frequent first


INDUSTRIES = (
    Industry("餐饮服务", ("餐饮管理", "餐饮", "酒家"), ("market", "fire", "enforcement", "health")),
    Industry("化工", ("化工", "新材料", "涂料"), ("ecology", "emergency", "fire")),
    Industry("机械制造", ("机械制造", "精密机械", "机电"), ("emergency", "ecology", "fire")),
    Industry("纺织印染", ("纺织", "印染", "服饰"), ("ecology", "emergency", "fire")),
    Industry(
        "建筑施工",
        ("建设工程", "建筑", "市政工程"),
        ("planning", "enforcement", "emergency", "transport"),
    ),
    Industry("道路运输", ("物流", "运输", "货运"), ("transport", "emergency", "fire")),
    Industry("医药制造", ("医药", "生物医药", "制药"), ("health", "market", "ecology")),
    Industry("农副食品加工", ("农业开发", "食品", "茶业"), ("agriculture", "market", "ecology")),
    Industry("文化娱乐", ("文化传媒", "娱乐", "酒店管理"), ("culture", "fire", "health")),
    Industry("批发零售", ("商贸", "超市", "贸易"), ("market", "fire")),
    Industry("电子信息", ("电子科技", "信息技术", "智能科技"), ("fire", "ecology", "market")),
)


class Violation(NamedTuple):
    category: str
    finding: str
    requirement: str
    offence: str  # the violation as written in a penalty decision
    legal_basis: str
    max_fine_yuan: int


VIOLATIONS: dict[str, tuple[Violation, ...]] = {
    "market": (
        Violation(
            "食品安全",
            "后厨存放超过保质期的食品原料",
            "清理过期原料，建立进货查验记录",
            "经营超过保质期的食品原料",
            "《中华人民共和国食品安全法》第一百二十四条",
            50_000,
        ),
        Violation(
            "证照公示",
            "营业执照未在经营场所醒目位置公示",
            "在经营场所醒目位置公示营业执照",
            "未按规定公示营业执照",
            "《无证无照经营查处办法》第十四条",
            10_000,
        ),
        Violation(
            "计量器具",
            "电子秤未按规定检定",
            "送检计量器具并保存检定证书",
            "使用未经检定的计量器具",
            "《中华人民共和国计量法实施细则》第四十三条",
            1_000,
        ),
    ),
    "ecology": (
        Violation(
            "废气治理",
            "VOCs收集处理设施未正常运行",
            "修复废气处理设施并建立运行台账",
            "未正常运行大气污染防治设施",
            "《中华人民共和国大气污染防治法》第一百零八条",
            200_000,
        ),
        Violation(
            "废水排放",
            "废水排放口在线监测数据超标",
            "整改污水处理工艺，确保达标排放",
            "超过水污染物排放标准排放水污染物",
            "《中华人民共和国水污染防治法》第八十三条",
            1_000_000,
        ),
        Violation(
            "危险废物",
            "危险废物未按规定分类贮存",
            "设置规范的危险废物贮存场所并张贴标识",
            "未按照规定贮存危险废物",
            "《中华人民共和国固体废物污染环境防治法》第一百一十二条",
            500_000,
        ),
    ),
    "emergency": (
        Violation(
            "特种作业",
            "特种作业人员未持证上岗",
            "安排持证人员作业，组织培训取证",
            "特种作业人员未按照规定经专门的安全作业培训并取得相应资格",
            "《中华人民共和国安全生产法》第九十七条",
            100_000,
        ),
        Violation(
            "危化品储存",
            "危险化学品超量储存",
            "按核定数量储存危险化学品，清理超量部分",
            "未按规定储存危险化学品",
            "《危险化学品安全管理条例》第八十条",
            200_000,
        ),
        Violation(
            "隐患排查",
            "未建立事故隐患排查治理制度",
            "建立隐患排查治理制度并如实记录",
            "未建立事故隐患排查治理制度",
            "《中华人民共和国安全生产法》第一百零一条",
            100_000,
        ),
    ),
    "enforcement": (
        Violation(
            "油烟污染",
            "油烟净化设施未定期清洗",
            "清洗油烟净化设施并保留清洗记录",
            "排放油烟的餐饮服务业经营者未安装油烟净化设施或者未正常使用",
            "《中华人民共和国大气污染防治法》第一百一十八条",
            100_000,
        ),
        Violation(
            "占道经营",
            "店外占道堆放物品",
            "清理占道物品，规范店内经营",
            "擅自占用城市道路堆放物品",
            "《城市道路管理条例》第四十二条",
            20_000,
        ),
    ),
    "fire": (
        Violation(
            "消防通道",
            "疏散通道堆放杂物",
            "清理疏散通道，保持畅通",
            "占用、堵塞、封闭疏散通道、安全出口",
            "《中华人民共和国消防法》第六十条",
            50_000,
        ),
        Violation(
            "灭火器材",
            "灭火器压力不足已失效",
            "更换失效灭火器并定期检查",
            "消防设施、器材未保持完好有效",
            "《中华人民共和国消防法》第六十条",
            50_000,
        ),
        Violation(
            "电气线路",
            "生产区电气线路私拉乱接",
            "规范敷设电气线路并加装保护",
            "电器产品的线路敷设不符合消防技术标准",
            "《中华人民共和国消防法》第六十六条",
            5_000,
        ),
    ),
    "planning": (
        Violation(
            "违法建筑",
            "厂区内违规搭建钢结构棚房",
            "自行拆除违规搭建部分",
            "未取得建设工程规划许可证进行建设",
            "《中华人民共和国城乡规划法》第六十四条",
            500_000,
        ),
        Violation(
            "违法用地",
            "未经批准占用集体土地堆放材料",
            "退还非法占用的土地并恢复原状",
            "未经批准非法占用土地",
            "《中华人民共和国土地管理法》第七十七条",
            300_000,
        ),
    ),
    "transport": (
        Violation(
            "车辆管理",
            "营运车辆未按期进行综合性能检测",
            "按期检测营运车辆并建立车辆档案",
            "使用未经检测合格的车辆从事道路运输",
            "《中华人民共和国道路运输条例》第七十条",
            10_000,
        ),
        Violation(
            "驾驶员资质",
            "驾驶员未取得从业资格证",
            "更换持证驾驶员并组织培训",
            "聘用无从业资格证的驾驶人员从事道路运输经营",
            "《中华人民共和国道路运输条例》第六十四条",
            3_000,
        ),
    ),
    "health": (
        Violation(
            "从业人员健康",
            "部分从业人员无有效健康证明",
            "组织从业人员体检并取得健康证明",
            "安排未获得有效健康合格证明的从业人员从事直接为顾客服务的工作",
            "《公共场所卫生管理条例实施细则》第三十八条",
            5_000,
        ),
        Violation(
            "职业卫生",
            "未开展职业病危害因素检测",
            "委托机构检测并公布结果",
            "未按照规定对工作场所职业病危害因素进行检测",
            "《中华人民共和国职业病防治法》第七十二条",
            200_000,
        ),
    ),
    "agriculture": (
        Violation(
            "农药经营",
            "店内销售禁用农药",
            "下架禁用农药并建立进销货台账",
            "经营禁用的农药",
            "《农药管理条例》第五十五条",
            50_000,
        ),
        Violation(
            "农产品质量",
            "农产品未按规定进行检测",
            "建立农产品自检制度并保存检测记录",
            "销售的农产品未经检测",
            "《中华人民共和国农产品质量安全法》第七十一条",
            20_000,
        ),
    ),
    "culture": (
        Violation(
            "经营许可",
            "娱乐经营许可证已过期",
            "办理娱乐经营许可证延续",
            "未按规定办理娱乐经营许可证",
            "《娱乐场所管理条例》第四十一条",
            20_000,
        ),
        Violation(
            "未成年人保护",
            "未在显著位置设置未成年人禁入标志",
            "设置未成年人禁入标志",
            "未按规定设置未成年人禁入标志",
            "《娱乐场所管理条例》第五十条",
            20_000,
        ),
    ),
}

# The abbreviation a department's penalty case numbers carry, e.g. 杭市监罚〔2025〕12号.
CASE_ABBREVIATIONS = {
    "market": "市监",
    "ecology": "环",
    "emergency": "应急",
    "enforcement": "综执",
    "fire": "消",
    "planning": "规资",
    "transport": "交",
    "health": "卫",
    "agriculture": "农",
    "culture": "文旅",
}

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯"
    "邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁沈姚卢姜钟陆汪范金方"
)
GIVEN_NAMES = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红文斌浩宇晨思佳欣怡子涵俊"
BRANDS = "恒华鑫瑞宏达信诚顺安嘉盛永泰天金新博汇远昌明德丰和宇正隆兴卓越海润中联"

ACCEPTANCE_OPINIONS = {
    True: (
        "整改到位，同意通过验收",
        "现场复核问题已整改完毕，予以通过",
        "资料齐全，整改措施落实到位",
    ),
    False: (
        "整改未完成，不予通过",
        "现场复查仍存在同类问题，验收不通过",
        "整改措施未落实，需重新整改",
    ),
}


# Codes (policies/requirements.csv) of the requirements above that have one.
REQUIREMENT_CODES = {
    "清理过期原料，建立进货查验记录": "expired-food-cleared",
    "在经营场所醒目位置公示营业执照": "licence-displayed",
    "送检计量器具并保存检定证书": "scales-verified",
    "修复废气处理设施并建立运行台账": "voc-treatment-repaired",
    "整改污水处理工艺，确保达标排放": "wastewater-compliant",
    "设置规范的危险废物贮存场所并张贴标识": "hazardous-waste-stored",
    "安排持证人员作业，组织培训取证": "certified-operators",
    "按核定数量储存危险化学品，清理超量部分": "chemicals-within-limit",
    "建立隐患排查治理制度并如实记录": "hazard-register",
    "清洗油烟净化设施并保留清洗记录": "fume-cleaning",
    "清理疏散通道，保持畅通": "fire-exits-clear",
    "更换失效灭火器并定期检查": "fire-equipment-maintained",
}

# What each department plans to inspect (检查计划), besides following up its own orders.
PLAN_SUBJECTS = {
    "market": ("食品安全", "计量器具", "产品质量"),
    "ecology": ("废气治理", "废水排放", "危险废物"),
    "emergency": ("安全生产", "危化品储存", "有限空间作业"),
    "enforcement": ("市容环境", "油烟污染"),
    "fire": ("消防安全", "消防通道", "电气线路"),
    "planning": ("违法建筑", "违法用地"),
    "transport": ("道路运输安全", "车辆管理"),
    "health": ("公共场所卫生", "职业卫生"),
    "agriculture": ("农产品质量", "农药经营"),
    "culture": ("经营许可", "未成年人保护"),
}
