"""The list of conversations: new, search (titles, text and thinking), rename (F2, in an
editor as big as the row), delete with undo."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from app.core.chat_store import Conversation
from app.ui.safe_text import tip

UNDO_MS = 8000


class _RenameDelegate(QStyledItemDelegate):
    """The rename editor fills the whole row: the style sheet's item padding left it one
    pixel high."""

    def createEditor(self, parent: QWidget, option: QStyleOptionViewItem,  # noqa: N802
                     index: QModelIndex | QPersistentModelIndex) -> QWidget:  # fmt: skip
        editor = super().createEditor(parent, option, index)
        editor.setObjectName("RenameEditor")
        return editor

    def updateEditorGeometry(self, editor: QWidget, option: QStyleOptionViewItem,  # noqa: N802
                             index: QModelIndex | QPersistentModelIndex) -> None:  # fmt: skip
        rect = option.rect
        editor.setGeometry(rect.adjusted(2, 1, -2, -1))


class Sidebar(QFrame):
    sig_selected = Signal(int)
    sig_new_chat = Signal()
    sig_rename = Signal(int, str)
    sig_delete = Signal(int)
    sig_undo_delete = Signal(int)
    sig_search = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("Sidebar")
        self.setMinimumWidth(220)
        self.setMaximumWidth(320)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 12, 10, 10)
        layout.setSpacing(8)
        top = QHBoxLayout()
        title = QLabel("Chats", self)
        title.setObjectName("SidebarTitle")
        self.new_button = QPushButton("+ New chat", self)
        self.new_button.setToolTip("Start a new conversation (Ctrl+N)")
        self.new_button.clicked.connect(self.sig_new_chat)
        top.addWidget(title)
        top.addStretch(1)
        top.addWidget(self.new_button)
        layout.addLayout(top)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search chats")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.sig_search)
        layout.addWidget(self.search)
        self.list = QListWidget(self)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setItemDelegate(_RenameDelegate(self.list))
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        self.list.currentItemChanged.connect(self._on_current)
        self.list.itemChanged.connect(self._on_edited)
        delete = QAction(self.list)
        delete.setShortcut(QKeySequence.StandardKey.Delete)
        delete.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        delete.triggered.connect(self.delete_current)
        self.list.addAction(delete)
        layout.addWidget(self.list, 1)
        self.undo_bar = QFrame(self)
        self.undo_bar.setObjectName("UndoBar")
        ub = QHBoxLayout(self.undo_bar)
        ub.setContentsMargins(10, 6, 6, 6)
        self.undo_label = QLabel("Chat deleted", self.undo_bar)
        self.undo_button = QPushButton("Undo", self.undo_bar)
        self.undo_button.clicked.connect(self._undo)
        ub.addWidget(self.undo_label, 1)
        ub.addWidget(self.undo_button)
        self.undo_bar.hide()
        layout.addWidget(self.undo_bar)
        self._undo_timer = QTimer(self)
        self._undo_timer.setSingleShot(True)
        self._undo_timer.setInterval(UNDO_MS)
        self._undo_timer.timeout.connect(self.undo_bar.hide)
        self._deleted: int | None = None
        self._filling = False

    def set_conversations(self, conversations: list[Conversation], current: int | None) -> None:
        self._filling = True
        self.list.clear()
        for conv in conversations:
            item = QListWidgetItem(conv.title)
            item.setData(Qt.ItemDataRole.UserRole, conv.id)
            item.setToolTip(tip(conv.title))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            self.list.addItem(item)
            if conv.id == current:
                self.list.setCurrentItem(item)
        self._filling = False

    def ids(self) -> list[int]:
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())]

    def current_id(self) -> int | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def rename_current(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self.list.editItem(item)

    def ask_rename(self, conversation_id: int, title: str) -> None:
        text, ok = QInputDialog.getText(self, "Rename chat", "Title:", text=title)
        if ok and text.strip():
            self.sig_rename.emit(conversation_id, text.strip())

    def delete_current(self) -> None:
        cid = self.current_id()
        if cid is not None:
            self.sig_delete.emit(cid)

    def show_undo(self, conversation_id: int, title: str) -> None:
        self._deleted = conversation_id
        short = title if len(title) <= 28 else title[:27] + "…"
        self.undo_label.setTextFormat(Qt.TextFormat.PlainText)
        self.undo_label.setText(f"Deleted “{short}”")
        self.undo_bar.show()
        self._undo_timer.start()

    def _undo(self) -> None:
        if self._deleted is not None:
            self.sig_undo_delete.emit(self._deleted)
        self._deleted = None
        self.undo_bar.hide()

    def _on_current(self, item: QListWidgetItem | None, _prev: object) -> None:
        if item is not None and not self._filling:
            self.sig_selected.emit(item.data(Qt.ItemDataRole.UserRole))

    def _on_edited(self, item: QListWidgetItem) -> None:
        if not self._filling and item.text().strip():
            self.sig_rename.emit(item.data(Qt.ItemDataRole.UserRole), item.text().strip())

    def _menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        self.list.setCurrentItem(item)
        menu = QMenu(self)
        menu.addAction("Rename", lambda: self.list.editItem(item))
        menu.addAction("Delete", self.delete_current)
        menu.exec(self.list.mapToGlobal(pos))
