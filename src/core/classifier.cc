/*
 * classifier.cc - the learned phrasing layer: a fastText sentence
 * classifier behind a small C interface (see internal.h).
 *
 * fastText is a C++ library with no C API, so this is the one C++ file in
 * the tree: it turns exceptions into error strings and never lets one
 * cross into C.  The model is trained at build time from models/corpus/
 * (tools/train-classifier.sh, fixed seed, one thread) and loaded once per
 * engine; predictions only read it, so every worker shares one copy.
 */
#include <fasttext/fasttext.h>

#include <cstdio>
#include <cstring>
#include <new>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

extern "C" {
#include "internal.h"
}

struct vms_classifier {
	fasttext::FastText ft;
};

/* Load a .bin or .ftz model; NULL with err set when it cannot be used. */
extern "C" vms_classifier *vms_classifier_load(const char *path, char *err, size_t errlen)
{
	vms_classifier *c = nullptr;
	try {
		c = new vms_classifier;
		c->ft.loadModel(std::string(path));
		if (c->ft.getArgs().model != fasttext::model_name::sup) {
			std::snprintf(err, errlen, "%s: not a supervised (classifier) model", path);
			delete c;
			return nullptr;
		}
		return c;
	} catch (const std::exception &ex) {
		std::snprintf(err, errlen, "%s: cannot load the classifier: %s", path, ex.what());
	} catch (...) {
		std::snprintf(err, errlen, "%s: cannot load the classifier", path);
	}
	delete c;
	return nullptr;
}

extern "C" void vms_classifier_free(vms_classifier *c)
{
	delete c;
}

/*
 * The most probable label for text (space-separated lower-case words) and
 * its probability; labels lose fastText's "__label__" prefix.  Costs one
 * pass over the words and their character n-grams plus one row of the
 * output matrix per label: microseconds for a sentence.  -1 with label
 * empty when the model gave nothing or memory ran out.
 */
extern "C" int vms_classifier_predict(const vms_classifier *c, const char *text, char *label,
                                      size_t labellen, double *prob)
{
	label[0] = '\0';
	*prob = 0.0;
	try {
		std::istringstream in(std::string(text) + "\n");
		std::vector<std::pair<fasttext::real, std::string>> out;
		if (!c->ft.predictLine(in, out, 1, 0.0) || out.empty())
			return -1;
		const std::string &l = out[0].second;
		const char *name = l.c_str();
		if (l.compare(0, 9, "__label__") == 0)
			name += 9;
		std::snprintf(label, labellen, "%s", name);
		*prob = out[0].first;
		return 0;
	} catch (...) {
		return -1;
	}
}
