#include "wristssl/util/csv.h"

#include <stdexcept>

#include "wristssl/util/fs.h"

namespace wristssl::util {

int CsvTable::column(const std::string& name) const {
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == name) return static_cast<int>(i);
  }
  return -1;
}

int CsvTable::require_column(const std::string& name, const std::string& source) const {
  const int c = column(name);
  if (c < 0) {
    std::string have;
    for (const auto& h : header) have += (have.empty() ? "" : ",") + h;
    throw std::runtime_error(source + ": no column '" + name + "' (header: " + have + ")");
  }
  return c;
}

CsvTable parse_csv(const std::string& text, const std::string& source) {
  CsvTable table;
  size_t i = 0;
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) i = 3;  // UTF-8 BOM
  std::vector<std::string> row;
  std::string field;
  bool in_quotes = false, field_quoted = false;
  size_t line = 1, row_line = 1;
  auto end_row = [&]() {
    row.push_back(field);
    field.clear();
    field_quoted = false;
    const bool blank = row.size() == 1 && row[0].empty();
    if (!blank) {
      if (table.header.empty()) {
        table.header = std::move(row);
      } else {
        if (row.size() > table.header.size()) {
          throw std::runtime_error(source + ":" + std::to_string(row_line) + ": " +
                                   std::to_string(row.size()) + " fields, header has " +
                                   std::to_string(table.header.size()));
        }
        row.resize(table.header.size());
        table.rows.push_back(std::move(row));
      }
    }
    row.clear();
    row_line = line;
  };
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          in_quotes = false;
        }
      } else {
        if (c == '\n') ++line;
        field += c;
      }
    } else if (c == '"' && field.empty() && !field_quoted) {
      in_quotes = field_quoted = true;
    } else if (c == ',') {
      row.push_back(field);
      field.clear();
      field_quoted = false;
    } else if (c == '\r') {
      // CRLF: the \n ends the row.
    } else if (c == '\n') {
      ++line;
      end_row();
    } else {
      field += c;
    }
  }
  if (in_quotes) throw std::runtime_error(source + ":" + std::to_string(row_line) + ": unclosed quote");
  if (!field.empty() || !row.empty()) end_row();
  if (table.header.empty()) throw std::runtime_error(source + ": empty CSV (no header)");
  return table;
}

CsvTable read_csv(const std::string& path) { return parse_csv(read_text(path), path); }

std::string csv_field(const std::string& value) {
  if (value.find_first_of(",\"\n\r") == std::string::npos) return value;
  std::string out = "\"";
  for (char c : value) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace wristssl::util
