using System.Globalization;
using System.Text;

namespace CoeffTune.Text;

/// <summary>
/// Text from files, models and adapters made safe to print: control characters, format characters (zero-width,
/// bidi overrides, soft hyphen), line and paragraph separators and lone surrogates are written as escapes
/// (\n, \t, \u202e), so a terminal shows exactly what is there and cannot be steered by it.
/// </summary>
public static class TerminalText
{
    public static string Quote(string text)
    {
        var sb = new StringBuilder(text.Length);
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                var cat = CharUnicodeInfo.GetUnicodeCategory(text, i);
                if (cat == UnicodeCategory.Format) sb.Append($"\\U{char.ConvertToUtf32(c, text[i + 1]):x8}");
                else sb.Append(c).Append(text[i + 1]);
                i++;
                continue;
            }
            switch (c)
            {
                case '\n': sb.Append("\\n"); continue;
                case '\r': sb.Append("\\r"); continue;
                case '\t': sb.Append("\\t"); continue;
                case '\\': sb.Append("\\\\"); continue;
            }
            var category = char.GetUnicodeCategory(c);
            if (category is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.LineSeparator
                    or UnicodeCategory.ParagraphSeparator or UnicodeCategory.Surrogate)
                sb.Append($"\\u{(int)c:x4}");
            else sb.Append(c);
        }
        return sb.ToString();
    }
}
