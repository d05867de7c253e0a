"""Labeled queries, written the way a first-line agent types during a call.

Q(text, type, problem-type keys) → relevant: every case of those problem types (score 2)
and the manual(s) of the type (score 1).
C(text, customer id, note keys, mails, ccases) → customer record + notes (+ mails,
+ that customer's cases of the listed problem types) with score 2.
M(text, manuals, problem types) → manuals score 2, cases of the types score 1.
X(text) → no_answer: nothing in the corpus answers it (no qrels lines).
"""


def Q(text, qtype, *types):
    return {"text": text, "type": qtype, "types": list(types)}


def C(text, cust, notes=(), mails=(), ccases=(), qtype="customer"):
    return {"text": text, "type": qtype, "cust": cust, "notes": list(notes), "mails": list(mails), "ccases": list(ccases)}


def M(text, manuals, *types):
    return {"text": text, "type": "manual", "man2": list(manuals), "types": list(types)}


def X(text):
    return {"text": text, "type": "no_answer"}


MXM = "manuals/mx3100_troubleshooting.md"
NWM = "manuals/router_setup_guide.html"
KTM = "manuals/kintai_cloud_faq.docx"
ESC = "manuals/escalation_rules.pdf"
HO = "manuals/handover_rules.txt"
CB = "manuals/contract_billing_guide.md"

QUERIES = [
    # 給紙ローラー摩耗
    Q("トレイの紙が2枚重なって送られてきて止まる。ずっと前から", "paraphrase", "jam_roller"),
    Q("紙ずまり何回もおきる、とってもまたなる", "typo", "jam_roller"),
    Q("ＭＸ－３１００　紙詰り　連発", "width", "jam_roller"),
    Q("ペーパーを何枚もまとめて吸い込んでひっかかる、ゴムがすり減ってる？", "paraphrase_noword", "jam_roller"),
    # 用紙種類設定
    Q("ふうとうに宛名刷るとぐしゃっとなる", "typo", "jam_media"),
    Q("手差しに厚い紙いれると中でつまる、普通紙なら平気", "paraphrase", "jam_media"),
    Q("年賀状みたいな硬いカードを通すとよれよれで出てこない", "paraphrase_noword", "jam_media"),
    # トナー残量・偏り
    Q("印刷の字がうすくて読めないってお客さん", "paraphrase", "faint"),
    Q("いんさつ かすれる となーまだある", "typo", "faint"),
    Q("ﾌﾟﾘﾝﾄ 薄い 右半分", "width", "faint"),
    Q("出てくる書面の黒がぼんやりして判読しづらい", "paraphrase_noword", "faint"),
    # 読取ガラス
    Q("コピーだけ縦線が入る、PCから刷るのは平気", "paraphrase", "streak"),
    Q("ｺﾋﾟｰ たてすじ 原稿にはない", "width", "streak"),
    Q("書類を上にのせて自動で吸い込ませると、複製に一本ラインが走る", "paraphrase_noword", "streak"),
    # SMTP
    Q("スキャンしたやつメールで来ない、きのうまでOK", "paraphrase", "scan_mail"),
    Q("スキャンtoメール とどかない えらー S512", "typo", "scan_mail"),
    Q("ｽｷｬﾅからﾒｰﾙ送信できない", "width", "scan_mail"),
    Q("取り込んだ書類を電子郵便で飛ばしても先方に着かない", "paraphrase_noword", "scan_mail"),
    Q("Gmailに変えてから複合機のメール送信NG", "vocab", "scan_mail"),
    # SMB
    Q("PCの共有フォルダにスキャンが入らない、パスワード変えた", "paraphrase", "scan_folder"),
    Q("スキャン　フォルダ保存　エラー　ＳＭＢ", "width", "scan_folder"),
    Q("読み取ったものが端末側の受け皿に届かない。サインインの暗証を変えてから", "paraphrase_noword", "scan_folder"),
    # E-203
    Q("E203が消えない、電源入れ直してもダメ", "paraphrase", "e203"),
    Q("ｴﾗｰ２０３　ｻｰﾋﾞｽｺｰﾙ", "width", "e203"),
    Q("えらー E-230？203だったかも 止まってる", "typo", "e203"),
    Q("液晶に二〇三番の警告が出て動かない", "paraphrase_noword", "e203"),
    # E-105
    Q("E-105出た、どうすればいい", "paraphrase", "e105"),
    Q("廃トナーの箱がいっぱいって出てる", "paraphrase", "e105"),
    Q("使い終わった粉を溜める入れ物がもう満タンらしい", "paraphrase_noword", "e105"),
    # FAX送信
    Q("ファクス送信だけダメ、受けるのはできる", "vocab", "fax_send"),
    Q("ひかり電話に変えてからFAXおくれない", "typo", "fax_send"),
    Q("ＦＡＸ　送信不可　回線かえた", "width", "fax_send"),
    Q("通信会社を乗り換えてから、書面の電送だけ先方に届かない", "paraphrase_noword", "fax_send"),
    # FAX受信
    Q("先方は送信済みらしいのにファックスが紙で出てこない", "paraphrase", "fax_recv"),
    Q("処方せんのﾌｧｸｽが紙にならない", "width", "fax_recv"),
    Q("土日分のファックスが全部消えた？月曜朝に確認したらゼロ", "paraphrase", "fax_recv"),
    Q("よそから届いたはずの書面が紙で出てこず本体に溜まってるっぽい", "paraphrase_noword", "fax_recv"),
    # ドライバー
    Q("パソコン買い替えたら印刷できない、ドライバーどこ", "paraphrase", "driver"),
    Q("Win11にアップデートしたらプリンタ使えない", "vocab", "driver"),
    Q("ﾄﾞﾗｲﾊﾞｰ ｲﾝｽﾄｰﾙ 手順", "width", "driver"),
    Q("新調した端末から刷ろうとすると暗号みたいなのが延々と出てくる", "paraphrase_noword", "driver"),
    # IP
    Q("停電のあと全員プリントできない、コピーは動く", "paraphrase", "ip_change"),
    Q("ぷりんたがオフライン表示 みんなのPC", "typo", "ip_change"),
    Q("ﾙｰﾀｰ交換後 複合機 見つからない", "width", "ip_change"),
    Q("週明けから、誰の席から送っても出力されない。複写だけは普通にできる", "paraphrase_noword", "ip_change"),
    # 安全
    Q("コピー機から焦げたにおい、使っていいか聞かれた", "escalation", "noise_smell"),
    Q("複合機 煙っぽいの出た 電源切ったって", "escalation", "noise_smell"),
    Q("ガリガリ異音してる こげくさい", "typo", "noise_smell"),
    Q("機械の中からプラが焼けるような臭い、従業員が頭痛いって", "escalation", "noise_smell"),
    Q("ゴリゴリ鳴って、ちょっと燃えてる感じのにおいがするらしい", "paraphrase_noword", "noise_smell"),
    # トナー発注
    Q("トナー注文 黒2本", "paraphrase", "toner_order"),
    Q("となー はっちゅう したい", "typo", "toner_order"),
    Q("ＭＸ３１００ トナー 品番", "width", "toner_order"),
    Q("粉インクの替えを買いたい。いつごろ来る？", "paraphrase_noword", "toner_order"),
    Q("消耗品の定期配送の間隔を変えたい", "vocab", "toner_order"),
    # 検針
    Q("今月の枚数の請求が倍になってる、そんなに刷ってない", "paraphrase", "counter"),
    Q("カウンタ料金おかしい 検針ミス？", "typo", "counter"),
    Q("休業してた月なのに刷った分の代金がやたら高い", "paraphrase_noword", "counter"),
    # ステープル
    Q("ホッチキスどめされないで出てくる", "typo", "staple"),
    Q("ｽﾃｰﾌﾟﾙ 止まらん 針は補充済み", "width", "staple"),
    Q("配布物の束が綴じられずにバラバラで出てくる", "paraphrase_noword", "staple"),
    # カラー上限
    Q("カラーにしてるのに白黒で出る", "paraphrase", "color_limit"),
    Q("からー いんさつ できない ぶもん", "typo", "color_limit"),
    Q("セールス部だけ色付き印刷ができない", "vocab", "color_limit"),
    Q("全部グレーの濃淡だけで出る、今月使いすぎてロックされた？", "paraphrase_noword", "color_limit"),
    # 非純正デッキ
    Q("外付けの大容量トレイからだけ詰まる、本体トレイはOK", "paraphrase", "mod_jam"),
    # Wi-Fi
    Q("無線がぶちぶち切れる、有線はへいき", "paraphrase", "wifi_drop"),
    Q("wifi よくきれる 電子レンジ", "typo", "wifi_drop"),
    Q("ＷｉＦｉ　切断　頻発", "width", "wifi_drop"),
    Q("ズームの最中に飛んでる回線がしょっちゅう途絶える、昼ごはんを温める時間が特にひどい", "paraphrase_noword", "wifi_drop"),
    # VPN
    Q("在宅からVPN入れない、証明書の期限がどうとか", "paraphrase", "vpn"),
    Q("ぶいぴーえぬ つながらない テレワーク全員", "typo", "vpn"),
    Q("ＶＰＮ　認証失敗", "width", "vpn"),
    Q("家から職場の仕組みに入れなくなった、鍵の期日が過ぎたとか", "paraphrase_noword", "vpn"),
    # 回線障害
    Q("回線来てない、ONUのPONってランプが消灯", "paraphrase", "internet_down"),
    Q("いんたーねっと つながらない 全員", "typo", "internet_down"),
    Q("事務所じゅうホームページも閲覧できない、光の箱の表示灯が消えてる", "paraphrase_noword", "internet_down"),
    # ファーム
    Q("ルーターが何度も勝手に落ちては立ち上がる", "paraphrase", "firmware"),
    Q("MR200 ver2.3.1 再起動", "width", "firmware"),
    Q("新しい版が入ってから、通信の箱が何度も止まっては復活する", "paraphrase_noword", "firmware"),
    # ゲスト
    Q("来客用wifiから社内のフォルダ見えちゃう", "paraphrase", "guest_wifi"),
    Q("お客さん向けの無線から社員のPCが覗ける状態", "paraphrase_noword", "guest_wifi"),
    # ルーターPW
    Q("ルーターの管理画面のパス忘れた、前任が辞めた", "paraphrase", "router_pw"),
    Q("るーたー ぱすわーど わからない", "typo", "router_pw"),
    Q("通信の箱の中身をいじるための暗証が誰にも分からない", "paraphrase_noword", "router_pw"),
    # 遅い
    Q("夕方だけネットが激遅", "paraphrase", "slow_net"),
    Q("ネット おそい よる", "typo", "slow_net"),
    Q("日が暮れると通信がのろのろ、昼は普通", "paraphrase_noword", "slow_net"),
    # ロック
    Q("勤怠にログインできない、ロックされたって", "paraphrase", "kintai_login"),
    Q("きんたい ろぐいん できない", "typo", "kintai_login"),
    Q("ｷﾝﾀｲ ﾛｯｸ 解除", "width", "kintai_login"),
    Q("出退勤の仕組みに何度か打ち損じたら締め出された", "paraphrase_noword", "kintai_login"),
    # PWリセット
    Q("パスワード再発行メールこない", "paraphrase", "pw_reset"),
    Q("ぱすわーど りせっと", "typo", "pw_reset"),
    Q("暗証を忘れた、作り直しの知らせがスマホに来ない", "paraphrase_noword", "pw_reset"),
    # 打刻修正
    Q("退勤おし忘れた 直し方", "typo", "dakoku_fix"),
    Q("打刻忘れ、締めた後でも修正できる？", "paraphrase", "dakoku_fix"),
    Q("ﾀﾞｺｸ忘れ まとめて直す", "width", "dakoku_fix"),
    Q("帰りのタッチをし損ねた、あとから訂正したい", "paraphrase_noword", "dakoku_fix"),
    # ICカード
    Q("カードかざしても反応しない、打刻機", "paraphrase", "ic_card"),
    Q("タイムレコーダー オフライン表示", "vocab", "ic_card"),
    Q("ＫＴ－１ 反映されない", "width", "ic_card"),
    Q("玄関の読み取り端末に社員証を当てても残らない、無線の暗証を変えた", "paraphrase_noword", "ic_card"),
    # 就業ルール
    Q("残業が手計算と合わない", "paraphrase", "overtime_calc"),
    Q("休憩が60分ひかれてる うちは45分", "paraphrase", "overtime_calc"),
    Q("ざんぎょう けいさん ずれる", "typo", "overtime_calc"),
    Q("夜の割増が賃金の元データに載ってない", "paraphrase_noword", "overtime_calc"),
    # CSV
    Q("勤怠の出力ファイル、給与計算側で読み込みエラー", "paraphrase", "csv_export"),
    Q("CSV もじばけ", "typo", "csv_export"),
    Q("書き出した一覧をエクセるで開くと氏名が読めない", "paraphrase_noword", "csv_export"),
    # GPS
    Q("スマホ打刻 位置情報がとれない", "paraphrase", "gps"),
    Q("ｽﾏﾎ GPS 打刻ｴﾗｰ", "width", "gps"),
    Q("外回りの人が携帯から出勤すると場所がダメって弾かれる", "paraphrase_noword", "gps"),
    # 有給
    Q("有休の残りが少なく表示される", "paraphrase", "paid_leave"),
    Q("ゆうきゅう ふよ されてない", "typo", "paid_leave"),
    Q("お休みの持ち分が前年から引き継がれてない", "paraphrase_noword", "paid_leave"),
    # ライセンス
    Q("アルバイト登録したらエラー、上限？", "paraphrase", "license"),
    Q("じゅうぎょういん ついか できない", "typo", "license"),
    Q("新しく入ったパートさんを名簿に載せられない", "paraphrase_noword", "license"),
    # 請求書
    Q("請求書なくしたので再発行して", "paraphrase", "invoice_reissue"),
    Q("せいきゅうしょ さいはっこう", "typo", "invoice_reissue"),
    Q("適格請求書の番号入りのがほしい", "vocab", "invoice_reissue"),
    Q("前回の支払い案内の紙をもう一度出して欲しい、宛先も直して", "paraphrase_noword", "invoice_reissue"),
    # 特別価格
    Q("値引きされてない、前の担当と約束したって", "paraphrase", "special_price"),
    Q("特別価格が反映されてない請求", "paraphrase", "special_price"),
    Q("安くしてもらえる話だったのに満額で来た", "paraphrase_noword", "special_price"),
    Q("割引っていつまで？", "paraphrase", "special_price"),
    # 解約
    Q("保守の解約ってどうやるの", "paraphrase", "cancel"),
    Q("契約やめたい 違約金いくら", "paraphrase", "cancel"),
    Q("かいやく したい", "typo", "cancel"),
    Q("よその業者に乗り換えたいので取引を終わりにしたい", "paraphrase_noword", "cancel"),
    # 移設
    Q("引越しで複合機移動したい", "paraphrase", "relocation"),
    Q("複合機を上のフロアへ持っていきたい、社員で担いでもOK？", "paraphrase", "relocation"),
    Q("オフィスを移るので、機器一式を新住所へ運んでもらいたい", "paraphrase_noword", "relocation"),
    # 保守日程
    Q("定期点検の日をずらしたい", "paraphrase", "maint_resched"),
    Q("保守の訪問日変更できる？", "paraphrase", "maint_resched"),
    Q("月イチで来てもらってる見回りの日取りを後ろにずらしたい", "paraphrase_noword", "maint_resched"),
    # SNS
    Q("客がSNSに書くって怒ってる", "escalation", "sns"),
    Q("ツイッターで晒すって言われた", "escalation", "sns"),
    Q("口コミに悪く書くと脅された", "escalation", "sns"),
    Q("みんなが見る場所に悪評を広めてやると凄まれた", "paraphrase_noword", "sns"),
    # 損害賠償
    Q("損害賠償払えって言われた", "escalation", "damages"),
    Q("故障で損した分を補償しろと", "escalation", "damages"),
    Q("壊れたせいで商売に穴が空いた、そのお金を持てと迫られた", "paraphrase_noword", "damages"),
    # 法的措置
    Q("弁護士立てるって言われたんだけど", "escalation", "legal"),
    Q("消費生活センターに言うぞと", "vocab", "legal"),
    Q("裁判するって客が言ってる", "escalation", "legal"),
    Q("出るところに出るぞ、と凄まれた", "paraphrase_noword", "legal"),
    # 担当者への苦情
    Q("電話の人の態度が悪いって苦情", "vocab", "staff_complaint"),
    Q("担当者へのクレーム、責任者出せって", "vocab", "staff_complaint"),
    Q("作業員が時間通りに来なかった、連絡もなかった", "paraphrase", "staff_complaint"),
    Q("応対した社員の口のきき方が無礼だと叱られた", "paraphrase_noword", "staff_complaint"),
    # ---------------------------------------------------------------- customers
    C("青葉さんのいつもの件って何曜日？", "C001", notes=["aoba_1", "aoba_5", "aoba_7", "aoba_8"], mails=["mail_aoba"],
      ccases=["maint_resched"]),
    C("青葉物流 30分ルール", "C001", notes=["aoba_3", "aoba_4", "aoba_6"], ccases=["staff_complaint"]),
    C("アオバ物流のセンター長 何時に電話すればいい", "C001", notes=["aoba_2"], mails=["mail_aoba"]),
    C("北斗精工の横のトレイ 改造してるって本当？", "C003", notes=["hokuto_1", "hokuto_2", "hokuto_4"], ccases=["mod_jam"]),
    C("北斗さん 大きいトレイでまた紙詰まり", "C003", notes=["hokuto_1", "hokuto_2", "hokuto_4"], ccases=["mod_jam"]),
    C("ひかりクリニック 日曜の連絡先", "C004", notes=["hikari_1", "hikari_3"], mails=["mail_hikari"]),
    C("ひかりさん 土曜に壊れたら当日行くんだっけ", "C004", notes=["hikari_1", "hikari_2", "hikari_5"], mails=["mail_hikari"]),
    C("東雲デザインのトナー割引まだ有効？", "C005", notes=["shino_1", "shino_2", "shino_3"], mails=["mail_shinonome"],
      ccases=["special_price"]),
    C("しののめさん 色調整の約束", "C005", notes=["shino_4", "shino_5"]),
    C("オオタ商事 値引きの期限", "C017", notes=["ota_1", "ota_3", "ota_4"], ccases=["special_price"]),
    C("髙島さんの請求書の宛名", "C022", notes=["taka_4", "taka_3"], ccases=["invoice_reissue"]),
    C("高島製作所 安全点検 追加したやつ", "C022", notes=["taka_1", "taka_2", "taka_3"], ccases=["noise_smell"]),
    C("ロータス薬局 FAX止まったら何分以内に行く？", "C023", notes=["lotus_1", "lotus_2", "lotus_3"]),
    C("ハーバー不動産 VPNの期限", "C007", notes=["harbor_1", "harbor_2"], ccases=["vpn"]),
    C("つばさ会の小松さん 連絡つく時間", "C008", notes=["tsubasa_1", "tsubasa_4"]),
    C("エムズ建設の現場登録、まだ代行してる？", "C009", notes=["ms_1", "ms_2"]),
    C("みなと法律事務所に訪問するときの決まり", "C010", notes=["minato_1", "minato_3"]),
    C("さくら会計 申告時期の代替機", "C002", notes=["sakura_1", "sakura_3", "sakura_4"]),
    C("ベイサイドホテル 週末のwifi駆けつけ", "C019", notes=["bay_1", "bay_2", "bay_3"]),
    C("ひまわりフーズ 夜勤の電話受付いつまで", "C011", notes=["hima_1", "hima_3"]),
    C("丸福さん 社長への電話のコツ", "C006", notes=["maru_1"]),
    C("テックブリッジの岡本さんへの連絡方法", "C015", notes=["tech_1", "tech_3"]),
    # ---------------------------------------------------------------- manuals
    M("エラーコードの一覧ほしい E-105とか", [MXM], "e105", "e203"),
    M("ルーターのチャネル固定のやりかた", [NWM], "wifi_drop"),
    M("勤怠クラウド 締め解除の手順", [KTM], "dakoku_fix"),
    M("引継ぎのとき書いとかなきゃいけない項目", [HO]),
    M("エスカレーションの基準 一覧表", [ESC]),
    M("トナー交換のやりかた 振るんだっけ", [MXM], "faint"),
    M("解約のときの違約金の説明のしかた", [CB], "cancel"),
    M("週末の緊急連絡のルール", [HO, ESC]),
    M("特別対応を約束するとき誰の承認がいる？", [HO, ESC]),
    M("VPN証明書の更新手順", [NWM], "vpn"),
    M("スキャンtoメールのSMTP設定 ポート何番", [MXM], "scan_mail"),
    # ---------------------------------------------------------------- not covered
    X("会議室のプロジェクターが映らない"),
    X("シュレッダーに紙が詰まった"),
    X("社用車の車検の予約"),
    X("年末調整の書類の書き方"),
    X("防犯カメラの録画が見られない"),
    X("ビジネスホンの留守電の設定"),
    X("ホームページのドメイン更新"),
    X("エアコンが効かない"),
    X("Excelのマクロが動かない"),
    X("スマホの画面が割れた"),
    X("3Dプリンターのフィラメント発注"),
    X("電子黒板のタッチペンが反応しない"),
    X("ウォーターサーバーの交換日"),
    X("名刺の印刷を外注したい"),
]
